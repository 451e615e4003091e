#!/usr/bin/env python3
"""Helpers for bench/long.sh (benchmark baselines may be Python).

  long.py speech OUT.wav MINUTES   2-channel-free 16 kHz mono speech that varies:
                                   espeak-ng reading sentences made from a seeded
                                   vocabulary (none repeats), with the LibriVox
                                   readings between every few minutes
  long.py watch PID                 the peak resident memory of PID and all its
                                   descendants, sampled every 0.5 s until it exits
"""
import os
import random
import subprocess
import sys
import tempfile
import time
import wave

LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox"
SUBJECTS = "the old miller,a young sailor,my sister,the careful doctor,our neighbour,the tired soldier,a quiet student,the baker,his uncle,the painter".split(",")
VERBS = "found,carried,painted,opened,described,remembered,sold,repaired,followed,watched,borrowed,cleaned".split(",")
OBJECTS = "a wooden box,the blue door,an empty boat,the long letter,a small garden,the broken clock,a heavy basket,the narrow bridge,a warm coat,the evening train".split(",")
PLACES = "near the river,in the village,before dinner,after the storm,on a cold morning,behind the church,at the market,under the old tree,during the holiday,by the harbour".split(",")


def speech(out, minutes):
    rng = random.Random(7)
    seconds = minutes * 60
    clips = sorted(f for f in os.listdir(LIBRIVOX) if f.endswith(".wav"))
    with tempfile.TemporaryDirectory() as tmp, wave.open(out, "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(16000)
        written, n, seen = 0.0, 0, set()
        while written < seconds:
            n += 1
            if n % 40 == 0:
                part = os.path.join(LIBRIVOX, clips[(n // 40) % len(clips)])
            else:
                sentences = []
                while len(sentences) < 3:
                    s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)} number {rng.randrange(100000)}."
                    if s not in seen:
                        seen.add(s)
                        sentences.append(s[0].upper() + s[1:])
                raw = os.path.join(tmp, "s.wav")
                subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(rng.randrange(140, 190)),
                                "-p", str(rng.randrange(30, 70)), "-w", raw, " ".join(sentences)], check=True)
                part = os.path.join(tmp, "s16.wav")
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", raw, "-ar", "16000", "-ac", "1", part], check=True)
            with wave.open(part) as w:
                frames = w.readframes(w.getnframes())
            sink.writeframes(frames)
            silence = int(16000 * rng.uniform(0.3, 1.5))
            sink.writeframes(b"\0\0" * silence)
            written += len(frames) / 32000 + silence / 16000


def tree_rss_kib(root):
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def watch(pid):
    peak = 0
    while os.path.exists(f"/proc/{pid}"):
        peak = max(peak, tree_rss_kib(pid))
        time.sleep(0.5)
    print(f"{peak / 1024:.0f}")


if __name__ == "__main__":
    if sys.argv[1] == "speech":
        speech(sys.argv[2], float(sys.argv[3]))
    else:
        watch(int(sys.argv[2]))
