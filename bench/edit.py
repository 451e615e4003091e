#!/usr/bin/env python3
"""One-cue edit benchmark (driven by bench/edit.sh): a running `babelcast serve`
localizes the 60 s clip into es and it; then one cue of the transcript is edited.
Compares the translate + dub time of the full run with that of applying the edit
(the encode is not counted: an edit never re-encodes), from the stage_finished
events' own timings, and prints what each language re-translated and re-voiced.

usage: bench/edit.py URL TOKEN DB CLIP
"""
import json
import sqlite3
import sys
import time
import urllib.request
import uuid

url, token, db_path, clip = sys.argv[1:5]


def call(method, path, body=None, content_type=None):
    req = urllib.request.Request(url + path, data=body, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if content_type:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def upload(path, options):
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="options"\r\n\r\n{json.dumps(options)}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="talk.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n".encode(),
        open(path, "rb").read(),
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return call("POST", "/v1/videos", b"".join(parts), f"multipart/form-data; boundary={boundary}")["id"]


def wait(video):
    while True:
        status = call("GET", f"/v1/videos/{video}")
        if status["state"] not in ("processing",):
            return status
        time.sleep(0.5)


def finished(video, after):
    db = sqlite3.connect(db_path)
    rows = db.execute(
        "SELECT stage, data FROM events WHERE video_id = ? AND kind = 'stage_finished' AND id > ? ORDER BY id",
        (video, after),
    ).fetchall()
    db.close()
    return [(stage, json.loads(data)) for stage, data in rows]


def last_event(video, kind):
    db = sqlite3.connect(db_path)
    row = db.execute("SELECT max(id) FROM events WHERE video_id = ? AND kind = ?", (video, kind)).fetchone()
    db.close()
    return row[0] or 0


def localize_secs(rows):
    return sum(d["secs"] for s, d in rows if s.startswith(("translate-", "dub-")))


video = upload(clip, {"language": "en", "to": ["es", "it"]})
t = time.monotonic()
status = wait(video)
full_wall = time.monotonic() - t
assert status["state"].startswith("completed"), status
full = finished(video, 0)

transcript = call("GET", f"/v1/videos/{video}/transcript")
cues = transcript["cues"]
middle = len(cues) // 2
cues[middle]["text"] = "The river is long and very wide."
t = time.monotonic()
call("PUT", f"/v1/videos/{video}/transcript", json.dumps({"cues": cues}).encode(), "application/json")
status = wait(video)
edit_wall = time.monotonic() - t
assert status["state"].startswith("completed"), status
edit = finished(video, last_event(video, "transcript_edited"))

full_secs, edit_secs = localize_secs(full), localize_secs(edit)
print(f"clip: {len(cues)} cues, targets es and it; edited cue {middle + 1}")
print("full run (translate + dub, sum of stage times):")
for stage, data in full:
    if stage.startswith(("translate-", "dub-")):
        print(f"  {stage:13} {data['secs']:6.2f} s")
print(f"  total         {full_secs:6.2f} s   (whole video, upload to completed: {full_wall:.1f} s)")
print("one-cue edit:")
for stage, data in edit:
    if stage.startswith(("translate-", "dub-")):
        reuse = data.get("reuse") or {}
        what = ", ".join(f"{k} {v}" for k, v in reuse.items())
        print(f"  {stage:13} {data['secs']:6.2f} s   {what}")
print(f"  total         {edit_secs:6.2f} s   (edit to completed: {edit_wall:.1f} s)")
print(f"edit / full: {100 * edit_secs / full_secs:.1f} %  (goal: at most 10 %)")
