"""Hostile input (issue 18, items 7 and 8): every bad file is exit 2 with one `error:` line naming
the file (and line), never an internal error, a hang or a memory blow-up."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from remoteenv import paths, yamlio
from remoteenv.cli import main as cli_main
from remoteenv.errors import ConfigError
from remoteenv.playbook import load_playbook, load_text


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("REMOTEENV_INVENTORY", "REMOTEENV_SSH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REMOTEENV_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return home


@contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail the test (rather than hang the suite) when the body takes longer than `seconds`."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum, frame):
        raise TimeoutError(f"took longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    with within(10), pytest.raises(SystemExit) as exited:
        cli_main(list(args))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def one_error(capsys: pytest.CaptureFixture, *args: str) -> str:
    """Run the CLI; assert exit 2 and stderr of one `error:` line (and at most one `hint:`)."""
    code, _, err = run(capsys, *args)
    lines = err.splitlines()
    assert code == 2, err
    assert lines and lines[0].startswith("error: ") and "internal error" not in err, err
    assert len(lines) <= 2 and all(ln.startswith("hint: ") for ln in lines[1:]), err
    return lines[0]


def hosts_error(capsys: pytest.CaptureFixture, path: Path, *names: str) -> str:
    return one_error(capsys, "-i", str(path), "hosts", *names, "--json")


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


# -- 7. bad bytes -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, data", [
    ("hosts.yaml", b"hosts:\n  caf\xe9: {}\n"),
    ("hosts.ini", b"[lab]\nnode1 owner=Jos\xe9\n"),
    ("hosts.txt", b"node1\nnode\xe9\n"),
])
def test_latin1_inventory_is_a_usage_error_naming_file_and_line(capsys, tmp_path, name, data):
    line = hosts_error(capsys, write(tmp_path / name, data))
    assert f"{tmp_path / name}:2: not UTF-8 text (byte 0xe9)" in line


def test_binary_inventory_names_the_line_of_its_nul(capsys, tmp_path):
    line = hosts_error(capsys, write(tmp_path / "hosts", b"node1\nnode2\n\x00\x01\x02\xff"))
    assert f"{tmp_path / 'hosts'}:3:" in line


def test_latin1_playbook_is_a_config_error_with_its_line(tmp_path):
    path = write(tmp_path / "site.yaml", b"steps:\n  - shell: echo d\xe9j\xe0\n")
    with pytest.raises(ConfigError, match=r"site\.yaml:2: not UTF-8"):
        load_playbook(path)


def test_a_utf8_bom_is_not_part_of_the_first_line(capsys, tmp_path):
    path = write(tmp_path / "hosts.ini", "\ufeff[lab]\nnode1\n".encode())
    code, out, _ = run(capsys, "-i", str(path), "hosts", "--json")
    assert code == 0 and json.loads(out)["hosts"][0]["groups"] == ["lab"]


# -- 8. unbounded reads -------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_inventory_is_refused_without_reading(capsys):
    assert "/dev/zero: cannot read inventory: it is not a regular file" in hosts_error(capsys, Path("/dev/zero"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_inventory_is_refused_without_blocking(capsys, tmp_path):
    os.mkfifo(tmp_path / "pipe")
    assert "not a regular file" in hosts_error(capsys, tmp_path / "pipe")


def test_folder_inventory_without_inventory_files_is_refused(capsys, tmp_path):
    # a folder is an Ansible inventory (every file in it is read); one with none is an error
    (tmp_path / "inv" / "group_vars").mkdir(parents=True)
    (tmp_path / "inv" / "README.md").write_text("notes\n")
    assert "no inventory files in this folder" in hosts_error(capsys, tmp_path / "inv")


def test_read_regular_file_caps_size_and_reads_devnull_as_empty(tmp_path):
    big = write(tmp_path / "big", b"x" * 101)
    with pytest.raises(ConfigError, match="larger than 100 bytes"):
        paths.read_regular_file(big, 100)
    assert paths.read_regular_file(big, 101) == b"x" * 101
    assert paths.read_regular_file(os.devnull, 10) == b""


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_ssh_config_include_of_dev_zero_names_the_include_line(capsys, home):
    write(home / ".ssh" / "config", "Host a\n  User x\nInclude /dev/zero\n")
    line = one_error(capsys, "hosts", "a", "--json")
    assert f"{home / '.ssh' / 'config'}:3: Include: /dev/zero" in line


def test_ssh_config_including_itself_is_a_loop_not_exponential_rereads(capsys, home):
    write(home / ".ssh" / "config", "Host a\n  User x\nInclude config config config\n")
    assert "Too many recursive configuration includes" in one_error(capsys, "hosts", "a", "--json")


def test_ssh_config_includes_of_one_file_twice_still_work(capsys, home):
    write(home / ".ssh" / "common", "Host *\n  User shared\n")
    write(home / ".ssh" / "config", "Include common common\nHost a\n  Port 2200\n")
    code, out, err = run(capsys, "hosts", "a", "--json")
    assert code == 0, err
    host = json.loads(out)["hosts"][0]
    assert (host["user"], host["port"]) == ("shared", 2200)


@pytest.mark.parametrize("text, expected", [
    ("Host a\n  ConnectTimeout \u00b2\n  Port \u00b2\n", ":2: ConnectTimeout: invalid time value"),
    ("Host a\n  Port 99999999999999999999999\n", ":2: Port: Bad port"),
])
def test_ssh_config_values_ssh_refuses_are_config_errors(capsys, home, text, expected):
    write(home / ".ssh" / "config", text)
    assert expected in one_error(capsys, "hosts", "a", "--json")


def test_ssh_config_canonicalize_without_domains_keeps_the_name(capsys, home):
    """ssh accepts CanonicalizeHostname with no CanonicalDomains: there is no suffix to try."""
    write(home / ".ssh" / "config", "Host a\n  CanonicalizeHostname yes\n")
    code, out, err = run(capsys, "hosts", "a", "--json")
    assert code == 0, err
    assert json.loads(out)["hosts"][0]["hostname"] == "a"


# -- 8. expansions ------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern, count", [("h[1:999999]", "999,999"), ("r[1:200]c[1:200]", "40,000"),
                                            ("h[0:999999999]", "1,000,000,000")])
def test_ini_ranges_are_capped_before_they_expand(capsys, tmp_path, pattern, count):
    line = hosts_error(capsys, write(tmp_path / "hosts.ini", f"[lab]\n{pattern}\n"))
    assert f"hosts.ini:2: host pattern '{pattern}' expands to {count} hosts" in line


def test_ini_ranges_of_a_whole_file_are_capped_too(capsys, tmp_path):
    lines = "".join(f"g{n}-[0001:9999]\n" for n in range(11))
    assert "expand to more than 100,000 hosts" in hosts_error(capsys, write(tmp_path / "hosts.ini", f"[lab]\n{lines}"))


@pytest.mark.parametrize("pattern", ["h[1:" + "9" * 4301 + "]", "h:" + "9" * 4301, "h[1:\u00b2]"])
def test_ini_numbers_python_cannot_read_are_config_errors(capsys, tmp_path, pattern):
    hosts_error(capsys, write(tmp_path / "hosts.ini", f"[lab]\n{pattern}\n"))


def test_nested_anchors_cannot_expand_without_bound(capsys, tmp_path):
    lines = ["hosts:", "  a:", "    vars:", "      l0: &l0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    lines += [f"      l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)]
    line = hosts_error(capsys, write(tmp_path / "hosts.yaml", "\n".join(lines) + "\n"))
    assert "aliases expand this file to" in line


def test_a_recursive_alias_is_an_error_with_its_line(tmp_path):
    with pytest.raises(ConfigError, match=r"x\.yaml:2: .*recursive alias"):
        yamlio.load_text("a: 1\nb: &b [1, *b]\n", "x.yaml")


def test_aliases_and_merge_keys_still_load():
    data = yamlio.load_text("base: &b {user: u, port: 1}\nhost:\n  <<: *b\n  port: 2\nlist: [*b, *b]\n", "x")
    assert data["host"] == {"user": "u", "port": 2}
    assert data["list"] == [{"user": "u", "port": 1}] * 2
    assert data["host"].line_of("port") == 4 and data["host"].line_of("user") == 1


@pytest.mark.parametrize("value, problem", [
    ("!!map x", "!!map does not fit"),
    ("!!seq {a: 1}", "!!seq is not supported on a mapping"),
    ("!!bool maybe", "'maybe' is not a valid boolean"),
    ("!!float x", "'x' is not a valid number"),
    ("!!int x", "'x' is not a valid integer"),
    ("2001-13-45", "'2001-13-45' is not a valid date"),
    ("!!binary x", "not a valid base64"),
    ("!!set {a}", "!!set is not supported"),
    ("!!python/object:os.system x", "is not supported"),
    ("9" * 4301, "not a valid integer"),
    ("0x" + "f" * 5000, "a number too long"),
    ("[" * 300 + "]" * 300, "nested more than 100 levels"),
    ("[" * 2000, "maximum nesting depth"),
])
def test_yaml_values_the_tags_cannot_read_are_errors_on_their_line(capsys, tmp_path, value, problem):
    path = write(tmp_path / "hosts.yaml", f"hosts:\n  a:\n    vars:\n      x: {value}\n")
    line = hosts_error(capsys, path)
    assert problem in line and f"{path}:" in line


ODD_INI = "[lab]\na x={1j:2} y={1,2} z=b'q' w=0x" + "f" * 5000 + " v=" + "[" * 50 + "]" * 50 + "\n"


@pytest.mark.parametrize("text", ["hosts:\n  a: {vars: {x: {2001-01-02: 3, !!binary eA==: 4}}}\n", ODD_INI])
def test_values_json_cannot_print_as_loaded_are_printed_as_text(capsys, tmp_path, text):
    path = write(tmp_path / ("hosts.yaml" if text.startswith("hosts") else "hosts.ini"), text)
    code, out, err = run(capsys, "-i", str(path), "hosts", "--json")
    assert code == 0, err
    variables = json.loads(out)["hosts"][0]["vars"]
    assert variables
    if "x" in variables and isinstance(variables["x"], dict):
        assert set(variables["x"]) == {"2001-01-02", "eA=="}
    else:
        # ansible-inventory reads {1,2} as the list [1, 2] (and refuses {1j:2}; remoteenv keeps the text)
        assert variables["x"] == "{1j:2}" and variables["y"] == [1, 2]


# -- 8. how errors print ------------------------------------------------------------------------
def test_an_error_on_line_100_prints_the_line_number_not_an_emoji(capsys, tmp_path):
    text = "hosts:\n  a: {}\n" + "# note\n" * 97 + "  b: {bad: 1}\n"
    line = hosts_error(capsys, write(tmp_path / "hosts.yaml", text))
    assert f"{tmp_path / 'hosts.yaml'}:100: unknown key 'bad'" in line and "\U0001f4af" not in line


def test_markup_in_a_message_is_printed_as_written(capsys, tmp_path):
    # a host line to Ansible (it does not end in ']'), whose range [bold] is malformed
    line = hosts_error(capsys, write(tmp_path / "hosts.ini", "[lab]\n[bold]x y\n"))
    assert "host range [bold] must be" in line


@pytest.mark.parametrize("name, data, line", [
    ("hosts.yaml", "hosts:\n  a: {vars: {x: \x01}}\n", 2),
    ("hosts.txt", "a\n\x0bb\x1b[31m\n", 2),
    ("hosts.ini", "[lab]\na\nb\x0cc x\n", 3),
    ("hosts.txt", "a\nb\u2028c\n", 2),
])
def test_control_characters_give_one_line_with_the_line_number(capsys, tmp_path, name, data, line):
    path = write(tmp_path / name, data)
    assert f"{path}:{line}:" in hosts_error(capsys, path)


# -- 10. plan changes nothing: unquoted variables in shell text are warned about at load time -------
def test_unquoted_variables_in_shell_commands_and_guards_warn_at_load():
    pb = load_text("vars: {d: x}\nsteps:\n  - shell:\n      command: mkdir {{ d }} && cd {{ d | quote }}\n"
                   "      unless: test -d {{d}}\n      creates: ~/{{ d }}\n  - shell: echo {{ d | quote }}\n",
                   "site.yaml")
    assert [(w.where, w.message.split(" is ")[0]) for w in pb.warnings] == [
        ("site.yaml:4", "{{ d }} in shell.command"), ("site.yaml:5", "{{ d }} in shell.unless")]
    assert "{{ d | quote }}" in pb.warnings[0].hint


@pytest.mark.parametrize("name", ["workstation", "examples/hello"])
def test_shipped_playbooks_load_without_warnings(name):
    assert load_playbook(name).warnings == []


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_every_usage_error_has_a_hint():
    from remoteenv.errors import ConfigError

    assert ConfigError("x.yaml:3: something is wrong").hint
    assert ConfigError("x", "do this").hint == "do this"
