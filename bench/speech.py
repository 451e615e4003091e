"""Benchmark harness: runs babelcast and faster-whisper, each decoding sequentially
and batched, as separate processes on the same input, and reports wall time,
real-time factor, peak RSS and word errors (as a count and a rate).

The input is the LibriVox clips of Debian's pocketsphinx-testdata, joined with a
second of silence, repeated; the reference is their transcription file.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import wave

LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox"

# Batch size 0: WhisperModel.transcribe (sequential); otherwise
# BatchedInferencePipeline with that batch size (its own VAD defaults: spans of at
# most 30 s packed into 30 s chunks). Word timings on in both, as babelcast's.
FASTER_WHISPER = r"""
import sys
from faster_whisper import BatchedInferencePipeline, WhisperModel
model_dir, audio, threads, beam, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
if batch:
    segments, info = BatchedInferencePipeline(model).transcribe(
        audio, beam_size=beam, batch_size=batch, vad_filter=True, word_timestamps=True)
else:
    segments, info = model.transcribe(audio, beam_size=beam, vad_filter=True,
                                      condition_on_previous_text=False, word_timestamps=True)
print(" ".join(s.text.strip() for s in segments))
"""


def make_input(path, repeats):
    ids = [l.strip() for l in open(f"{LIBRIVOX}/fileids") if l.strip()]
    refs = {}
    for line in open(f"{LIBRIVOX}/transcription"):
        m = re.match(r"(.*)\((.*)\)\s*$", line)
        if m:
            refs[m.group(2)] = m.group(1).replace("<s>", "").replace("</s>", "").strip()
    frames, reference = [], []
    silence = b"\0\0" * 16000
    for _ in range(repeats):
        for i in ids:
            with wave.open(f"{LIBRIVOX}/{i}.wav") as w:
                frames.append(w.readframes(w.getnframes()))
            frames.append(silence)
            reference.append(refs[i])
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"".join(frames))
    seconds = sum(len(f) for f in frames) / 32000
    return " ".join(reference), seconds


def normalise(text):
    words = re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()
    return ["mister" if w == "mr" else w for w in words]


def word_errors(reference, hypothesis):
    """(substitutions + insertions + deletions, reference words)."""
    r, h = normalise(reference), normalise(hypothesis)
    row = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, row[0] = row[0], i
        for j, hw in enumerate(h, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (rw != hw))
    return row[len(h)], len(r)


def measure(argv):
    """Runs argv in its own process; returns (wall s, peak RSS MiB, exit status).
    wait4 gives that one child's peak RSS, not the harness's."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.execvp(argv[0], argv)
    _, status, usage = os.wait4(pid, 0)
    return time.monotonic() - start, usage.ru_maxrss / 1024, status


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--babelcast", required=True)
    p.add_argument("--models", required=True)
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--passes", type=int, default=3)
    a = p.parse_args()
    model_dir = os.path.abspath(os.path.join(a.models, "whisper-base"))

    with tempfile.TemporaryDirectory() as tmp:
        audio = os.path.join(tmp, "librivox.wav")
        reference, seconds = make_input(audio, a.repeats)
        print(f"input: {seconds:.1f} s of LibriVox speech ({a.repeats} x 5 clips), "
              f"model whisper-base int8, {a.threads} threads, beam {a.beam}, VAD on, no previous-text context")

        fw_script = os.path.join(tmp, "fw.py")
        open(fw_script, "w").write(FASTER_WHISPER)
        # Each pass runs the four once, interleaved, so a busy spell of the machine
        # slows all of them; the median of the passes is reported.
        configs = [("babelcast", 1), ("babelcast", a.batch), ("faster-whisper", 0), ("faster-whisper", a.batch)]
        passes = {}
        for p, (name, batch) in [(p, c) for p in range(a.passes) for c in configs]:
            label = f"{name} {'sequential' if batch in (0, 1) else f'batch {batch}'}"
            out = os.path.join(tmp, f"out-{p}-{name}-{batch}")
            os.mkdir(out)
            if name == "babelcast":
                argv = [a.babelcast, "--models-dir", a.models, "transcribe", audio, "-o", out,
                        "--format", "json", "--model", "whisper-base", "--threads", str(a.threads),
                        "--beam-size", str(a.beam), "--compute-type", "int8", "--batch-size", str(batch)]
            else:
                argv = ["sh", "-c", f'exec "{sys.executable}" "{fw_script}" "{model_dir}" "{audio}" '
                        f'{a.threads} {a.beam} {batch} > "{out}/fw.txt"']
            wall, rss, status = measure(argv)
            if status != 0:
                sys.exit(f"{label} failed")
            if name == "babelcast":
                words = json.load(open(os.path.join(out, "librivox.json")))["words"]
                text = " ".join(w["text"] for w in words)
            else:
                text = open(os.path.join(out, "fw.txt")).read()
            passes.setdefault(label, []).append((wall, rss, *word_errors(reference, text)))
        runs = {label: (statistics.median(r[0] for r in rs), max(r[1] for r in rs), *rs[-1][2:])
                for label, rs in passes.items()}
        if any(len({r[2] for r in rs}) > 1 for rs in passes.values()):
            print("note: word errors differed between passes:", {l: [r[2] for r in rs] for l, rs in passes.items()})

    print(f"median of {a.passes} passes (peak memory: the largest)")
    print(f"{'engine':<30}{'wall s':>9}{'RTF':>8}{'peak MiB':>10}{'errors':>8}{'WER %':>8}")
    for label, (wall, rss, errors, total) in runs.items():
        print(f"{label:<30}{wall:>9.2f}{wall / seconds:>8.3f}{rss:>10.0f}{errors:>8}{errors / total * 100:>8.1f}")
    print(f"reference: {total} words")
    (bs, bb, fs, fb) = runs.values()
    print(f"babelcast/faster-whisper, sequential: time {bs[0] / fs[0]:.2f}, peak memory {bs[1] / fs[1]:.2f}, "
          f"errors {bs[2]} vs {fs[2]}")
    print(f"babelcast/faster-whisper, batch {a.batch}: time {bb[0] / fb[0]:.2f}, peak memory {bb[1] / fb[1]:.2f}, "
          f"errors {bb[2]} vs {fb[2]}")


if __name__ == "__main__":
    main()
