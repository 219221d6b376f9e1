"""KEY=value files (the stack's .env): read, and update keys in place atomically.

The file is rewritten whole into a temporary file created 0600 in the same directory, then
renamed over the old one: a reader sees the old or the new file, never half of one, and the
values are never world-readable. Lines other than the updated keys are kept as they are."""

from __future__ import annotations

import os
import tempfile


def read(path: str) -> dict[str, str]:
    out = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.lstrip().startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v
    return out


def update(path: str, values: dict[str, str]) -> bool:
    """Set each KEY=value (added at the end when missing). True when the file changed."""
    for k, v in values.items():
        if "\n" in v or "\n" in k or "=" in k:
            raise ValueError(f"cannot write {k!r} into an env file")
    with open(path) as f:
        lines = f.read().splitlines()
    left, out = dict(values), []
    for line in lines:
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if key in left:
            out.append(f"{key}={left.pop(key)}")
        else:
            out.append(line)
    out += [f"{k}={v}" for k, v in left.items()]
    text = "\n".join(out) + "\n"
    with open(path) as f:
        if f.read() == text:
            return False
    st = os.stat(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".env.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # on disk before it replaces the file every secret of the stack is in
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, st.st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True
