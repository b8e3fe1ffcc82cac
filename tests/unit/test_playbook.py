"""Playbook loading: validation errors name file, line and key; variables; rendering; export."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from remoteenv import playbook as pbmod
from remoteenv.errors import ConfigError
from remoteenv.inventory import load_inventory, resolve
from remoteenv.inventory.sshconfig import SSHConfigFile
from remoteenv.playbook import load_playbook
from remoteenv.steps import STEP_TYPES, templating


def write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_playbook(path)
    return caught.value


# -- shipped playbooks ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["workstation", "examples/hello"])
def test_shipped_playbooks_load_by_name(name, tmp_path):
    pb = load_playbook(name)
    assert pb.path == pbmod.shipped_dir() / f"{name}.yaml"
    spec = tmp_path / "requirements.txt"  # the workstation's env file is the person's (up passes it)
    spec.write_text("jupyterlab\nipykernel\n")
    steps = pb.build_for(None, {"env_file": str(spec)} if name == "workstation" else None)
    assert steps and all(s.describe() for s in steps)


def test_shipped_names_listed_when_not_found():
    with pytest.raises(ConfigError) as caught:
        load_playbook("no-such-playbook")
    assert "no playbook 'no-such-playbook'" in caught.value.message
    assert "workstation" in caught.value.hint and "examples/hello" in caught.value.hint


def test_playbook_found_in_current_folder(tmp_path, monkeypatch):
    (tmp_path / "playbooks").mkdir()
    write(tmp_path / "playbooks", "steps:\n  - shell: 'true'\n", "mine.yaml")
    monkeypatch.chdir(tmp_path)
    pb = load_playbook("mine")
    assert pb.name == "mine" and pb.path.resolve() == (tmp_path / "playbooks" / "mine.yaml").resolve()


# -- validation -------------------------------------------------------------------------------
def test_unknown_step_type_lists_known_ones(tmp_path):
    path = write(tmp_path, """
        name: x
        steps:
          - shell: {command: "true", creates: /tmp}
          - copy:
              dest: /tmp/x
        """)
    err = error_of(path)
    assert err.message == f"{path}:4: unknown step type 'copy'"
    for known in ("shell", "upload", "facts"):
        assert known in err.hint
    assert err.hint.startswith("known step types:")


def test_unknown_parameter_lists_the_steps_parameters(tmp_path):
    path = write(tmp_path, """
        steps:
          - name: first
            shell:
              command: make
              crates: build/out
        """)
    err = error_of(path)
    assert err.message == f"{path}:5: unknown parameter 'crates' for shell"
    assert "creates" in err.hint and "only_if" in err.hint and "chdir" in err.hint


def test_missing_required_parameter_says_which(tmp_path):
    path = write(tmp_path, """
        steps:
          - upload:
              content: hi
        """)
    err = error_of(path)
    assert err.message == f"{path}:2: upload needs 'dest'"


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, """
        name: x
        hosts: all
        steps: []
        """)
    err = error_of(path)
    assert err.message == f"{path}:2: unknown key 'hosts' in the playbook"
    assert "steps" in err.hint


def test_two_step_types_in_one_item(tmp_path):
    path = write(tmp_path, """
        steps:
          - shell: ls
            upload: {dest: x, content: y}
        """)
    err = error_of(path)
    assert re.match(rf"{re.escape(str(path))}:3: step 1 has two step types", err.message)


def test_step_without_type(tmp_path):
    path = write(tmp_path, """
        steps:
          - name: lonely
        """)
    err = error_of(path)
    assert err.message == f"{path}:2: step 1 names no step type"


def test_missing_steps(tmp_path):
    err = error_of(write(tmp_path, "name: x\n"))
    assert "no 'steps:'" in err.message


def test_wrong_types_are_named(tmp_path):
    err = error_of(write(tmp_path, """
        steps:
          - upload: {dest: x, content: y, template: sometimes}
        """))
    assert "template must be true or false" in err.message and ":2:" in err.message
    err = error_of(write(tmp_path, """
        steps:
          - shell: {command: x, timeout: soon}
        """))
    assert "timeout must be a number" in err.message


def test_mode_must_be_a_quoted_octal_string(tmp_path):
    path = write(tmp_path, """
        steps:
          - upload:
              dest: x
              content: y
              mode: 0644
        """)
    err = error_of(path)
    assert err.message.startswith(f"{path}:2: mode must be a quoted octal string")
    assert "0644" in err.hint


def test_upload_needs_exactly_one_source(tmp_path):
    err = error_of(write(tmp_path, """
        steps:
          - upload: {dest: x, content: y, src: f.txt}
        """))
    assert "exactly one of 'src' or 'content'" in err.message


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "steps:\n  - shell: [unclosed\n")
    err = error_of(path)
    assert err.message.startswith(f"{path}:")


def test_shorthand_fills_command(tmp_path):
    pb = load_playbook(write(tmp_path, "steps:\n  - shell: echo hi\n"))
    (step,) = pb.build_for(None)
    assert step.command == "echo hi"


# -- variables --------------------------------------------------------------------------------
def test_undefined_variable_names_file_and_line(tmp_path):
    path = write(tmp_path, """
        vars:
          a: 1
        steps:
          - shell:
              command: echo {{ a }}
              creates: "{{ missing }}"
        """)
    pb = load_playbook(path)
    with pytest.raises(ConfigError) as caught:
        pb.build_for(None)
    assert caught.value.message == f"{path}:6: undefined variable 'missing' in shell.creates"
    assert "--var missing=" in caught.value.hint


def test_variable_precedence(tmp_path, monkeypatch):
    inventory = write(tmp_path, """
        defaults:
          vars: {v_defaults: defaults, v_group: defaults, v_host: defaults, v_cli: defaults}
        groups:
          lab:
            vars: {v_group: group, v_host: group, v_cli: group}
            hosts: [box]
        hosts:
          box:
            hostname: 198.18.0.1
            vars: {v_host: host, v_cli: host}
        """, "hosts.yaml")
    monkeypatch.setenv("HOME", str(tmp_path))
    host = resolve(load_inventory(inventory), "box", SSHConfigFile(tmp_path / "none"))
    pb = load_playbook(write(tmp_path, """
        vars: {v_play: play, v_defaults: play, v_group: play, v_host: play, v_cli: play}
        steps:
          - shell: echo {{ v_play }} {{ v_defaults }} {{ v_group }} {{ v_host }} {{ v_cli }} {{ inventory_hostname }}
        """))
    variables = pb.variables_for(host, {"v_cli": "cli"})
    assert {k: variables[k] for k in ("v_play", "v_defaults", "v_group", "v_host", "v_cli")} == {
        "v_play": "play", "v_defaults": "defaults", "v_group": "group", "v_host": "host", "v_cli": "cli"}
    (step,) = pb.build_for(host, {"v_cli": "cli"})
    assert step.command == "echo play defaults group host cli box"
    # The playbook's defaults apply when nothing overrides them.
    (bare,) = pb.build_for(None)
    assert bare.command == "echo play play play play play "


def test_templated_numbers_and_flags_are_coerced(tmp_path):
    pb = load_playbook(write(tmp_path, """
        vars: {t: "7", tpl: "yes"}
        steps:
          - shell: {command: "true", timeout: "{{ t }}"}
          - upload: {dest: x, content: "a {{ t }}", template: "{{ tpl }}"}
          - timeout: "{{ t }}"
            shell: "true"
        """))
    shell, upload, third = pb.build_for(None)
    assert shell.timeout == 7.0 and third.timeout == 7.0
    assert upload.template is True and upload.data() == b"a 7"


def test_export_build_keeps_placeholders(tmp_path):
    pb = load_playbook(write(tmp_path, "steps:\n  - shell: echo {{ nowhere }}\n"))
    (step,) = pb.build(None)
    assert step.command == "echo {{ nowhere }}"


# -- templates --------------------------------------------------------------------------------
def test_render_placeholders_and_quote_filter():
    variables = {"name": "it's", "n": 3, "flag": True, "empty": None}
    assert templating.render("{{name}}-{{ n }}-{{ flag }}-{{ empty }}", variables, "f:1") == "it's-3-true-"
    assert templating.render("echo {{ name | quote }}", variables, "f:1") == "echo 'it'\"'\"'s'"
    assert templating.render("no placeholders {", variables, "f:1") == "no placeholders {"


def test_render_errors_name_where_and_what():
    with pytest.raises(ConfigError, match=r"^f\.yaml:4: unsupported placeholder '\{\{ a\.b \}\}' in shell"):
        templating.render("{{ a.b }}", {"a": 1}, "f.yaml:4", "shell")
    with pytest.raises(ConfigError, match="unknown filter 'upper'"):
        templating.render("{{ a | upper }}", {"a": "x"}, "f:1")
    with pytest.raises(ConfigError, match=r"^tpl\.txt:3: undefined variable 'who'"):
        templating.render("one\ntwo\nhi {{ who }}\n", {}, "tpl.txt", first_line=1)


def test_upload_template_file_error_names_template_line(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "motd").write_text("Welcome to {{ host_title }}\nOwner: {{ owner }}\n")
    pb = load_playbook(write(tmp_path, """
        vars: {host_title: lab}
        steps:
          - upload: {src: files/motd, dest: /etc/motd, template: true}
        """))
    with pytest.raises(ConfigError) as caught:
        pb.build_for(None)
    assert caught.value.message == f"{tmp_path / 'files' / 'motd'}:2: undefined variable 'owner' in the template"
    (step,) = pb.build_for(None, {"owner": "ada"})
    assert step.data() == b"Welcome to lab\nOwner: ada\n"


def test_missing_src_file_is_a_config_error(tmp_path):
    pb = load_playbook(write(tmp_path, "steps:\n  - upload: {src: nope.txt, dest: x}\n"))
    with pytest.raises(ConfigError, match=r":2: .*nope\.txt: cannot read"):
        pb.build_for(None)


# -- docstring examples and export ------------------------------------------------------------
@pytest.mark.parametrize("type_name", sorted(STEP_TYPES))
def test_every_step_documents_a_runnable_example(type_name, tmp_path):
    doc = STEP_TYPES[type_name].__doc__ or ""
    assert "Parameters:" in doc and "Example:" in doc
    example = textwrap.dedent(doc.split("Example:", 1)[1])
    pb = pbmod.load_text(example, f"{type_name} docstring")
    assert any(spec.type == type_name for spec in pb.steps)
    for param in STEP_TYPES[type_name].PARAMS:
        assert param.name in doc


def test_to_ansible_shell_guards_become_register_and_when(tmp_path):
    pb = load_playbook(write(tmp_path, """
        steps:
          - name: build
            timeout: 60
            shell:
              command: make
              chdir: ~/src
              creates: out/bin
              unless: test -f .skip
              only_if: test -f Makefile
        """))
    (step,) = pb.build(None)
    tasks = step.to_ansible(4)
    assert [t["name"] for t in tasks] == ["build (unless check)", "build (only_if check)", "build"]
    assert tasks[0]["register"] == "remoteenv_unless_4" and tasks[0]["changed_when"] is False
    assert tasks[0]["ansible.builtin.shell"] == {"cmd": "test -f .skip", "chdir": "~/src"}
    assert tasks[2]["ansible.builtin.shell"] == {"cmd": "make", "chdir": "~/src", "creates": "out/bin"}
    assert tasks[2]["when"] == ["remoteenv_unless_4.rc != 0", "remoteenv_only_if_4.rc == 0"]
    assert tasks[2]["timeout"] == 60


def test_to_ansible_upload_and_facts(tmp_path):
    (tmp_path / "motd.j2").write_text("hi {{ who }}\n")
    pb = load_playbook(write(tmp_path, """
        steps:
          - upload: {dest: ~/.cfg/a, content: "literal {{ braces }}"}
          - upload: {dest: ~/b, content: "hi {{ who }}", template: true, mode: "0600"}
          - upload: {dest: /etc/motd, src: motd.j2, template: true}
          - facts: {}
        """))
    a, b, c, d = pb.build(None)
    folder, copy = a.to_ansible()
    assert folder["ansible.builtin.file"] == {"path": "~/.cfg", "state": "directory"}
    assert copy["ansible.builtin.copy"]["content"] == "{% raw %}literal {{ braces }}{% endraw %}"
    (copy_b,) = b.to_ansible()
    assert copy_b["ansible.builtin.copy"] == {"dest": "~/b", "mode": "0600", "content": "hi {{ who }}"}
    tasks_c = c.to_ansible()
    assert tasks_c[-1]["ansible.builtin.template"]["src"] == str((tmp_path / "motd.j2").resolve())
    assert d.to_ansible() == [{"name": "facts: gather again", "ansible.builtin.setup": {}}]


# -- the commands' argument handling (nothing here reaches a host) ----------------------------
def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    from remoteenv.cli import main

    with pytest.raises(SystemExit) as caught:
        main(args)
    out, err = capsys.readouterr()
    return caught.value.code, out, err


@pytest.fixture
def no_inventory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REMOTEENV_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("REMOTEENV_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("REMOTEENV_INVENTORY", raising=False)


def test_cli_bad_var_is_a_usage_error(no_inventory, capsys):
    code, _, err = run_cli(["apply", "examples/hello", "somehost", "--var", "oops"], capsys)
    assert code == 2 and "--var 'oops' is not NAME=VALUE" in err


def test_cli_playbook_error_is_one_line_with_exit_2(no_inventory, tmp_path, capsys):
    bad = write(tmp_path, "steps:\n  - shel: ls\n", "bad.yaml")
    code, _, err = run_cli(["plan", str(bad), "somehost"], capsys)
    assert code == 2
    assert err.startswith(f"error: {bad}:2: unknown step type 'shel'") and "Traceback" not in err


def test_cli_empty_inventory_needs_hosts(no_inventory, capsys):
    code, _, err = run_cli(["plan", "workstation"], capsys)
    assert code == 2 and "inventory is empty" in err


def test_cli_retry_failed_without_earlier_apply(no_inventory, capsys):
    code, _, err = run_cli(["apply", "examples/hello", "--retry-failed"], capsys)
    assert code == 2 and "no earlier apply" in err


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_cli_help_has_examples(command, capsys):
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0 and "Examples:" in out and f"remoteenv {command} workstation" in out


def test_cli_warns_about_an_unquoted_variable_in_a_shell_command(no_inventory, tmp_path, capsys):
    risky = write(tmp_path, "vars: {name: x}\nsteps:\n  - shell: echo {{ name }}\n", "risky.yaml")
    code, _, err = run_cli(["export", "ansible", str(risky), "somehost", "-o", str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert f"warning: {risky}:3: {{{{ name }}}} in shell.command is not quoted" in err
    assert "hint: write {{ name | quote }}" in err
    safe = write(tmp_path, "vars: {name: x}\nsteps:\n  - shell: echo {{ name | quote }}\n", "safe.yaml")
    run_cli(["export", "ansible", str(safe), "somehost", "-o", str(tmp_path / "out2")], capsys)
    assert "warning" not in capsys.readouterr().err


def test_cli_hosts_table_prints_names_as_text(tmp_path, monkeypatch, capsys):
    inv = tmp_path / "inv.yaml"
    inv.write_text('hosts:\n  "web[bold]:100:":\n    hostname: 10.0.0.1\n')
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = run_cli(["-i", str(inv), "hosts"], capsys)
    assert code == 0 and "web[bold]:100:" in out and "💯" not in out


def test_list_and_mapping_parameters_are_rendered_per_host_item_by_item(tmp_path):
    from remoteenv.inventory.model import Host
    from remoteenv.steps import STEP_TYPES, register
    from remoteenv.steps.base import Param, Step

    if "rt_lists" not in STEP_TYPES:
        @register("rt_lists")
        class Lists(Step):
            """A test step. Parameters: packages, env. Example: (none)"""

            PARAMS = (Param("packages", kind=list), Param("env", kind=dict))

    pb = load_playbook(write(tmp_path, """
        vars: {torch: "2.4", gpu: "0"}
        steps:
          - rt_lists:
              packages: [numpy, "torch=={{ torch }}", 3]
              env: {CUDA_VISIBLE_DEVICES: "{{ gpu }}", OMP: 4}
        """))
    a, b = Host("a", "a"), Host("b", "b", vars={"torch": "2.5", "gpu": "1"})
    (for_a,) = pb.build_for(a)
    (for_b,) = pb.build_for(b)
    assert for_a.params == {"packages": ["numpy", "torch==2.4", "3"], "env": {"CUDA_VISIBLE_DEVICES": "0", "OMP": "4"}}
    assert for_b.params["packages"][1] == "torch==2.5" and for_b.params["env"]["CUDA_VISIBLE_DEVICES"] == "1"
    with pytest.raises(ConfigError, match=r":3: rt_lists packages must be a list"):
        load_playbook(write(tmp_path, "steps:\n  - rt_lists:\n      packages: numpy\n", "bad.yaml"))
    with pytest.raises(ConfigError, match="must be text, not a mapping"):
        load_playbook(write(tmp_path, "steps:\n  - rt_lists:\n      packages: [{a: 1}]\n", "bad2.yaml"))
    with pytest.raises(ConfigError, match="undefined variable 'nope'"):
        bad = write(tmp_path, "steps:\n  - rt_lists:\n      env: {A: '{{ nope }}'}\n", "bad3.yaml")
        load_playbook(bad).build_for(a)
