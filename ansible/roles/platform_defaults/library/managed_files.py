#!/usr/bin/python
"""managed_files: a role's files and directories in one remote execution, check mode and diff truthful."""

from __future__ import annotations

import glob
import grp
import os
import pwd
import re
import stat
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: managed_files
short_description: Converge a role's files and directories in one execution on the host
description:
  - The same result as one M(ansible.builtin.copy) (content), M(ansible.builtin.template) (render with
    C(lookup('ansible.builtin.template', ...)) on the controller) or M(ansible.builtin.file) (state
    directory or absent) per entry, in a single execution of one module on the host instead of two per file.
    On a converged host most of a no-op run's cost is these executions (issue 13).
  - A file is written when its content differs, through a temporary file in the same directory that
    already has the wanted owner, group, mode and (SELinux) the default context of the path, renamed over
    the old one: a reader never sees a half-written file and a secret is never readable by others, even
    for a moment.
  - Owner, group and mode are set when they differ, on files and directories alike; a directory is
    created when missing, with its missing parents (as M(ansible.builtin.file) does: same owner, group and mode);
    a file's directory must exist (an earlier entry may create it).
  - O(exclusive) names glob patterns whose matches this list owns: any existing path matching one that
    is not an entry is removed (a retired certificate, a credential no longer used).
  - The host's journal gets the paths of an invocation, never a content (AnsibleModule would log them all).
  - Check mode changes nothing and reports what a run would change; with C(--diff) each changed file
    shows its old and new content (RV(diff)), except entries with O(files[].secret), whose content is
    never returned.
options:
  files:
    description: The entries, converged in order.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      state:
        description: C(file) (write O(files[].content)), C(directory) or C(absent).
        type: str
        choices: [file, directory, absent]
        default: file
      content:
        description: The file's whole content (required with state C(file)).
        type: str
      owner:
        description: User name; C(root) when omitted.
        type: str
        default: root
      group:
        description: Group name; C(root) when omitted.
        type: str
        default: root
      mode:
        description: Octal mode as a string (C("0640"), C("2755")); required unless O(files[].state) is C(absent).
        type: str
      secret:
        description: Never return the content (no diff of it); its value is also masked in any output.
        type: bool
        default: false
  exclusive:
    description: Glob patterns whose matches, when not entries of O(files), are removed.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Write the role's files
  managed_files:
    files:
      - path: /etc/chrony/chrony.conf
        content: "{{ lookup('ansible.builtin.template', 'chrony.conf.j2') }}"
        mode: "0644"
      - path: /etc/systemd/journald.conf.d
        state: directory
        mode: "0755"
    exclusive:
      - /usr/local/share/ca-certificates/oci-mlops-*.crt
  register: common_files
"""

RETURN = r"""
changed_paths:
  description: The paths written, created, re-owned, re-moded or removed (or that would be, in check mode).
  type: list
  elements: str
  returned: always
diff:
  description: One before/after pair per changed path (with C(--diff)); a secret's content reads C(<secret>).
  type: list
  returned: when diff mode is on
"""


class _Module(AnsibleModule):
    """Logs the paths it manages to the host's journal, never the contents (a file may hold a secret;
    AnsibleModule logs every argument's value unless the task is no_log)."""

    def _log_invocation(self) -> None:
        paths = [f.get("path") for f in self.params.get("files") or []]
        self.log(f"Invoked with paths={paths} exclusive={self.params.get('exclusive')}")


class _Entry:
    def __init__(self, module: AnsibleModule, spec: dict[str, Any]) -> None:
        self.path: str = spec["path"]
        self.state: str = spec["state"]
        self.secret: bool = spec["secret"]
        self.content: str | None = spec["content"]
        if not os.path.isabs(self.path):
            module.fail_json(msg=f"managed_files: path {self.path!r} is not absolute")
        if self.state == "file" and self.content is None:
            module.fail_json(msg=f"managed_files: {self.path}: state file needs content")
        if self.state != "absent":
            mode = spec["mode"]
            if not isinstance(mode, str) or not re.fullmatch("[0-7]{3,4}", mode):
                module.fail_json(msg=f"managed_files: {self.path}: mode must be octal like '0640', not {mode!r}")
            self.mode = int(mode, 8)
            # -1: the account does not exist. In check mode an earlier task of the run would have created
            # it (a new host): the entry is reported as a change. Otherwise it is an error.
            self.uid = _id(module, pwd.getpwnam, spec["owner"], "user", self.path)
            self.gid = _id(module, grp.getgrnam, spec["group"], "group", self.path)
        if self.secret and self.content:
            module.no_log_values.add(self.content)

    def attributes_match(self, st: os.stat_result) -> bool:
        return (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (self.uid, self.gid, self.mode)

    def wanted(self) -> str:
        return _describe(self.uid, self.gid, self.mode)


def _id(module: AnsibleModule, lookup: Any, name: str, kind: str, path: str) -> int:
    try:
        return int(lookup(name)[2])
    except KeyError:
        if not module.check_mode:
            module.fail_json(msg=f"managed_files: {path}: no {kind} {name!r} on this host")
        return -1


def _describe(uid: int, gid: int, mode: int) -> str:
    """Owner, group and mode as the diff shows them."""
    return f"owner: {_name(pwd.getpwuid, uid)}\ngroup: {_name(grp.getgrgid, gid)}\nmode: {mode:04o}\n"


def _attributes(st: os.stat_result) -> str:
    return _describe(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))


def _name(lookup: Any, number: int) -> str:
    if number == -1:
        return "(an account this run creates)"
    try:
        return str(lookup(number)[0])
    except KeyError:
        return str(number)


class _Converge:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.check = module.check_mode
        self.changed: list[str] = []
        self.diffs: list[dict[str, str]] = []
        self.selinux = module.selinux_enabled()

    def _diff(self, path: str, before: str, after: str) -> None:
        if self.module._diff:
            self.diffs.append({"before_header": path, "after_header": path, "before": before, "after": after})

    def _context(self, tmp: str, path: str) -> None:
        if self.selinux:
            self.module.set_context_if_different(tmp, self.module.selinux_default_context(path), False)

    def _lstat(self, path: str, kind: Any, what: str) -> os.stat_result | None:
        """The path's own status (None: it does not exist); it must be of the kind the entry wants."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if not kind(st.st_mode):
            self.module.fail_json(msg=f"managed_files: {path} exists and is not {what}")
        return st

    def file(self, e: _Entry) -> None:
        assert e.content is not None
        data = e.content.encode("utf-8")
        st = self._lstat(e.path, stat.S_ISREG, "a regular file")
        old: bytes | None = None
        if st is not None:
            with open(e.path, "rb") as f:
                old = f.read()
        attrs_ok = st is not None and e.attributes_match(st)
        if old == data and attrs_ok:
            return
        self.changed.append(e.path)
        if old != data:
            before = "" if old is None else ("<secret>\n" if e.secret else old.decode("utf-8", "replace"))
            after = "<secret changed>\n" if e.secret else e.content
            self._diff(e.path, before, after)
        else:
            assert st is not None
            self._diff(e.path, _attributes(st), e.wanted())
        if self.check:
            return
        if old == data:
            os.chown(e.path, e.uid, e.gid)
            os.chmod(e.path, e.mode)
            return
        directory = os.path.dirname(e.path)
        if not os.path.isdir(directory):
            self.module.fail_json(msg=f"managed_files: {e.path}: directory {directory} does not exist")
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(e.path)}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chown(tmp, e.uid, e.gid)
            os.chmod(tmp, e.mode)
            self._context(tmp, e.path)
            os.rename(tmp, e.path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise

    def directory(self, e: _Entry) -> None:
        st = self._lstat(e.path, stat.S_ISDIR, "a directory")
        if st is not None and e.attributes_match(st):
            return
        self.changed.append(e.path)
        self._diff(e.path + "/", "absent\n" if st is None else _attributes(st), "directory\n" + e.wanted())
        if self.check:
            return
        if st is None:
            # Missing parents too, with the same owner, group and mode (as ansible.builtin.file does).
            missing = []
            path = e.path
            while not os.path.lexists(path):
                missing.append(path)
                path = os.path.dirname(path)
            for path in reversed(missing):
                os.mkdir(path, 0o700)
                self._context(path, path)
                os.chown(path, e.uid, e.gid)
                os.chmod(path, e.mode)
            return
        os.chown(e.path, e.uid, e.gid)
        os.chmod(e.path, e.mode)

    def absent(self, path: str, secret: bool = False) -> None:
        if not os.path.lexists(path):
            return
        self.changed.append(path)
        self._diff(path, "present\n" if secret or os.path.isdir(path) else _read_text(path), "absent\n")
        if self.check:
            return
        if os.path.isdir(path) and not os.path.islink(path):
            self.module.fail_json(msg=f"managed_files: {path} is a directory; only files are removed")
        os.unlink(path)


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(65536).decode("utf-8", "replace")
    except OSError:
        return "present\n"


def main() -> None:
    module = _Module(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "path", "required": True},
                    "state": {"type": "str", "choices": ["file", "directory", "absent"], "default": "file"},
                    "content": {"type": "str"},
                    "owner": {"type": "str", "default": "root"},
                    "group": {"type": "str", "default": "root"},
                    "mode": {"type": "raw"},
                    "secret": {"type": "bool", "default": False},
                },
            },
            "exclusive": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    entries = [_Entry(module, spec) for spec in module.params["files"]]
    paths = [e.path for e in entries]
    if len(set(paths)) != len(paths):
        twice = sorted({p for p in paths if paths.count(p) > 1})
        module.fail_json(msg="managed_files: a path is listed twice: " + ", ".join(twice))
    for pattern in module.params["exclusive"]:
        if not os.path.isabs(pattern):
            module.fail_json(msg=f"managed_files: exclusive pattern {pattern!r} is not absolute")
    run = _Converge(module)
    for e in entries:
        if e.state == "file":
            run.file(e)
        elif e.state == "directory":
            run.directory(e)
        else:
            run.absent(e.path, e.secret)
    for pattern in module.params["exclusive"]:
        for path in sorted(glob.glob(pattern)):
            if path not in paths:
                run.absent(path, secret=True)
    result: dict[str, Any] = {"changed": bool(run.changed), "changed_paths": run.changed}
    if module._diff:
        result["diff"] = run.diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
