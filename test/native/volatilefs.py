#!/usr/bin/python3
"""volatilefs: a FUSE passthrough that forgets every write not yet fsynced when "power" is cut.

    volatilefs.py BACKING_DIR MOUNTPOINT

Every write goes through to BACKING_DIR at once (so the program above reads what it wrote), and is
remembered in an undo log (offset, the bytes it overwrote, the file's old size) until an fsync or
fdatasync of that file, or a write through an O_SYNC/O_DSYNC descriptor. Writing anything to the
control file MOUNTPOINT/.power-cut undoes, newest first, every write still in the logs, exactly as a
disk whose volatile cache was lost, prints one JSON line of counters and fails every later operation
with EIO (the machine is off). Metadata (create, rename, unlink, mkdir) is kept: only file data is
volatile, which is what a power cut does to a journalling file system's data blocks.

Runs as root (libfuse mounts directly, no fusermount needed). Debian package: python3-fusepy.
"""
import errno
import json
import os
import sys
import threading

from fusepy import FUSE, FuseOSError, Operations

CONTROL = "/.power-cut"


class VolatileFS(Operations):
    def __init__(self, root):
        self.root = os.path.realpath(root)
        self.mu = threading.Lock()
        self.undo = {}  # backing path -> [(offset, old bytes, old size, bytes written)]
        self.sync_fh = set()
        self.off = False
        self.stats = {"writes": 0, "syncs": 0, "synced_writes": 0, "dropped_writes": 0, "dropped_bytes": 0, "files_rolled_back": 0}

    def _p(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _alive(self):
        if self.off:
            raise FuseOSError(errno.EIO)

    # --- the power switch ---------------------------------------------------------------------
    def _cut(self):
        with self.mu:
            if self.off:
                return
            self.off = True
            for full, log in self.undo.items():
                if not log:
                    continue
                self.stats["files_rolled_back"] += 1
                try:
                    fd = os.open(full, os.O_WRONLY)
                except FileNotFoundError:
                    continue
                try:
                    for offset, old, old_size, n in reversed(log):
                        self.stats["dropped_writes"] += 1
                        self.stats["dropped_bytes"] += n
                        if old:
                            os.pwrite(fd, old, offset)
                        os.ftruncate(fd, old_size)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self.undo.clear()
        print(json.dumps({"event": "power-cut", **self.stats}), flush=True)

    # --- files --------------------------------------------------------------------------------
    def getattr(self, path, fh=None):
        if path == CONTROL:
            return {"st_mode": 0o100200, "st_nlink": 1, "st_size": 0, "st_uid": 0, "st_gid": 0, "st_atime": 0, "st_mtime": 0, "st_ctime": 0}
        self._alive()
        st = os.lstat(self._p(path))
        return {k: getattr(st, k) for k in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid", "st_blocks")}

    def access(self, path, mode):
        if path == CONTROL:
            return 0
        self._alive()
        if not os.access(self._p(path), mode):
            raise FuseOSError(errno.EACCES)
        return 0

    def readdir(self, path, fh):
        self._alive()
        return [".", ".."] + os.listdir(self._p(path))

    def statfs(self, path):
        self._alive()
        s = os.statvfs(self._p(path))
        return {k: getattr(s, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def open(self, path, flags):
        if path == CONTROL:
            return 0
        self._alive()
        fh = os.open(self._p(path), flags)
        if flags & (os.O_SYNC | os.O_DSYNC):
            self.sync_fh.add(fh)
        return fh

    def create(self, path, mode, fi=None):
        self._alive()
        full = self._p(path)
        fh = os.open(full, os.O_RDWR | os.O_CREAT, mode)
        with self.mu:
            self.undo.setdefault(full, [])
        return fh

    def read(self, path, size, offset, fh):
        self._alive()
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        if path == CONTROL:
            self._cut()
            return len(data)
        self._alive()
        full = self._p(path)
        with self.mu:
            self.stats["writes"] += 1
            if fh in self.sync_fh:
                self.stats["synced_writes"] += 1
                n = os.pwrite(fh, data, offset)
                os.fsync(fh)
                return n
            size = os.fstat(fh).st_size
            old = os.pread(fh, min(len(data), max(0, size - offset)), offset) if offset < size else b""
            self.undo.setdefault(full, []).append((offset, old, size, len(data)))
            return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        if path == CONTROL:
            return 0
        self._alive()
        full = self._p(path)
        with self.mu:
            size = os.path.getsize(full)
            old = b""
            if length < size:
                with open(full, "rb") as f:
                    f.seek(length)
                    old = f.read(size - length)
            self.undo.setdefault(full, []).append((length, old, size, 0))
            os.truncate(full, length)

    def fsync(self, path, datasync, fh):
        self._alive()
        with self.mu:
            os.fsync(fh)
            self.stats["syncs"] += 1
            self.undo.pop(self._p(path), None)
        return 0

    def fsyncdir(self, path, datasync, fh):
        self._alive()
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        if path == CONTROL:
            return 0
        with self.mu:
            self.sync_fh.discard(fh)
        os.close(fh)
        return 0

    # --- names (kept across the cut) ------------------------------------------------------------
    def unlink(self, path):
        self._alive()
        full = self._p(path)
        with self.mu:
            self.undo.pop(full, None)
        os.unlink(full)

    def rename(self, old, new):
        self._alive()
        a, b = self._p(old), self._p(new)
        with self.mu:
            self.undo.pop(b, None)
            if a in self.undo:
                self.undo[b] = self.undo.pop(a)
        os.rename(a, b)

    def mkdir(self, path, mode):
        self._alive()
        os.mkdir(self._p(path), mode)

    def rmdir(self, path):
        self._alive()
        os.rmdir(self._p(path))

    def chmod(self, path, mode):
        self._alive()
        os.chmod(self._p(path), mode)

    def chown(self, path, uid, gid):
        self._alive()
        os.chown(self._p(path), uid, gid)

    def utimens(self, path, times=None):
        if path == CONTROL:
            return 0
        self._alive()
        os.utime(self._p(path), times)

    def link(self, target, source):
        self._alive()
        os.link(self._p(source), self._p(target))

    def symlink(self, target, source):
        self._alive()
        os.symlink(source, self._p(target))

    def readlink(self, path):
        self._alive()
        return os.readlink(self._p(path))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: volatilefs.py BACKING_DIR MOUNTPOINT", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({"event": "mounting", "backing": sys.argv[1], "mountpoint": sys.argv[2]}), flush=True)
    FUSE(VolatileFS(sys.argv[1]), sys.argv[2], foreground=True, nothreads=False, allow_other=False)
