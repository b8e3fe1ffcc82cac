"""remoteenv's ssh config resolution against OpenSSH's own, case by case.

Each case in tests/data/ssh_configs (a `NAME.conf` file, or a folder holding `config` and the
files it includes) becomes the test home's ~/.ssh. Its header says what to ask:

    # query: HOST HOST ...   the names to resolve
    # mode: user             ssh's default files (~/.ssh/config, then /etc/ssh/ssh_config);
                             without it, `ssh -F ~/.ssh/config` and SSHConfigFile(that path)
    # env: NAME=value        environment both tools see (for ${NAME})
    # resolve: NAME=ADDRESS  the only names the resolver knows (CanonicalizeHostname): ssh gets
                             them through libnss_wrapper's hosts file, remoteenv as its resolver

For every name, every option remoteenv uses is compared with `ssh -G` (tests/ssh_g.py); the
paths ssh expands only when it connects (IdentityFile, CertificateFile, ProxyCommand) are compared
with what `ssh -v` shows. A config ssh refuses must be a ConfigError naming the same file and line.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from ssh_g import COMPARED, SshG

from remoteenv.errors import ConfigError
from remoteenv.inventory import ssh_resolve
from remoteenv.inventory.sshconfig import SSHConfigFile

CORPUS = Path(__file__).resolve().parents[1] / "data" / "ssh_configs"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.suffix == ".conf" or p.is_dir())

# Where remoteenv knowingly answers differently from `ssh -G`: (case, host, option) -> why. The
# README states each one; keep it empty.
DIFFERENCES: dict[tuple[str, str, str], str] = {}


def _header(text: str, key: str) -> list[str]:
    found = re.findall(rf"^# {key}: (.*)$", text, re.M)
    return " ".join(found).split() if found else []


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SHELL", "/bin/sh")
    monkeypatch.delenv("REMOTEENV_SSH_CONFIG", raising=False)
    return home


def _empty_hosts(tmp_path: Path) -> Path:
    """A hosts file naming nothing: ssh's name lookups stay off the network, as ours do."""
    path = tmp_path / "no-hosts"
    path.write_text("")
    return path


def _install(case: str, ssh_dir: Path) -> Path:
    source = CORPUS / case
    if source.is_dir():
        shutil.copytree(source, ssh_dir, dirs_exist_ok=True)
    else:
        shutil.copy(source, ssh_dir / "config")
    for path in [ssh_dir, *ssh_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # ssh refuses group- or world-writable files
    return ssh_dir / "config"


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert sum(len(_header((CORPUS / c if c.endswith(".conf") else CORPUS / c / "config").read_text(),
                           "query")) for c in CASES) >= 150


@pytest.mark.parametrize("case", CASES)
def test_resolves_as_ssh_g(case: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ssh = SshG(home, tmp_path / "ssh-g")
    config = _install(case, home / ".ssh")
    text = config.read_text()
    names = _header(text, "query")
    assert names, f"{case}: no `# query:` line"
    user_mode = _header(text, "mode") == ["user"]
    extra_env = dict(item.split("=", 1) for item in _header(text, "env"))
    for key, value in extra_env.items():
        monkeypatch.setenv(key, value)
    extra_env.setdefault("NSS_WRAPPER_HOSTS", str(_empty_hosts(tmp_path)))
    table = dict(item.split("=", 1) for item in _header(text, "resolve"))
    if table:
        hosts_file = tmp_path / "hosts"
        hosts_file.write_text("".join(f"{address} {name}\n" for name, address in table.items()))
        extra_env["NSS_WRAPPER_HOSTS"] = str(hosts_file)
        known = {name.lower() for name in table}
        monkeypatch.setattr(ssh_resolve, "resolve_name", lambda name, port: name.rstrip(".").lower() in known)
    else:
        monkeypatch.setattr(ssh_resolve, "resolve_name", lambda name, port: False)  # no DNS in tests
    given = None if user_mode else config

    def ours() -> SSHConfigFile:
        return SSHConfigFile() if user_mode else SSHConfigFile(config)

    for name in names:
        theirs, err = ssh.run(name, given, extra_env)
        if theirs is None:
            with pytest.raises(ConfigError) as refused:
                ours().resolution(name).ssh_g  # noqa: B018  (the whole resolution, as ssh -G does)
            said = re.search(r"(\S+?):? line (\d+)", err)
            if said:  # ssh names the file and line: so must we
                path, line = said.groups()
                where = f"{path if path.startswith('/') else home / '.ssh' / path}:{line}"
                assert where in refused.value.message, (case, name, err, refused.value.message)
            continue
        try:
            resolution = ours().resolution(name)
            mine = resolution.ssh_g
        except ConfigError as exc:  # a path ssh expands only to connect: `ssh -v` must refuse it too
            shown = ssh.verbose(name, given, extra_env, stand_in_proxy=True)
            assert exc.message.rsplit(": ", 1)[-1] in shown.stderr, (case, name, exc.message, shown.stderr)
            continue
        for option in COMPARED:
            if (case, name, option) in DIFFERENCES:
                continue
            assert mine.get(option, [] if option in ("identityfile", "certificatefile") else None) == \
                theirs.get(option), f"{case}: {name}: {option} (ssh -G: {err.strip()})"
        _compare_expanded(ssh, case, name, given, extra_env, resolution)


def _compare_expanded(ssh: SshG, case: str, name: str, given: Path | None, extra_env: dict[str, str],
                      resolution) -> None:
    """The paths ssh expands only to connect, as `ssh -v` shows them (it never connects here)."""
    fields = resolution.fields
    if resolution.ssh_g.get("canonicalizehostname", "false") != "false":
        return  # a stand-in ProxyCommand would change what canonicalization does
    shown = ssh.verbose(name, given, extra_env, stand_in_proxy=fields["proxy_command"] is None
                        and fields["proxy_jump"] is None)
    assert shown.identity_files == fields["identity_files"], f"{case}: {name}: IdentityFile"
    assert shown.certificate_files == fields["certificate_files"], f"{case}: {name}: CertificateFile"
    if fields["proxy_command"] is not None:
        assert shown.proxy_command == fields["proxy_command"], f"{case}: {name}: ProxyCommand"


def test_keywords_ssh_knows_are_the_ones_we_know(tmp_path: Path) -> None:
    """Our keyword table against ssh's: each one we accept, ssh accepts, and a few it refuses."""
    from remoteenv.inventory import ssh_parse

    ssh = SshG(tmp_path, tmp_path / "ssh-g")
    known = sorted(ssh_parse._KNOWN | ssh_parse._IGNORED | set(ssh_parse._ALIASES))
    config = tmp_path / "keywords"
    refused = ["usekeychain", "hostnamee", "identityfiles"]
    for keyword in [*known, *refused]:
        config.write_text(f"Host never-this-host\n{keyword} x\n")
        _, err = ssh.run("h", config)
        bad = "Bad configuration option" in err
        assert bad == (keyword in refused), (keyword, err)
        try:
            SSHConfigFile(config).resolution("h")
            ours_bad = False
        except ConfigError as exc:  # `x` is a bad value for many keywords: only the keyword counts here
            ours_bad = "Bad configuration option" in exc.message
        assert ours_bad == bad, keyword
    for keyword in sorted(ssh_parse.NEWER):  # later releases' keywords: accepted (README says so)
        config.write_text(f"{keyword} x\n")
        SSHConfigFile(config).resolution("h")
