"""Settings precedence: flag > INVOKE_FLAMEKIT_* env > invoke.yaml > defaults, each rung checked."""
from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Config

import tasks
from flamekit import config as fkconfig
from flamekit.errors import ConfigError


def invoke_config(tmp_path: Path, yaml_text: str | None = None, env: dict | None = None, monkeypatch=None):
    # invoke.yaml beside tasks.py is invoke's *project* config level: below env vars.
    # (A file given with `inv -f` is the *runtime* level, which invoke ranks above env vars.)
    if yaml_text is not None:
        (tmp_path / "invoke.yaml").write_text(yaml_text)
    cfg = Config(defaults={**Config.global_defaults()}, project_location=str(tmp_path))
    cfg.load_collection(tasks.ns.configuration())
    cfg.load_project()
    if env and monkeypatch:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
    cfg.load_shell_env()
    return cfg


def settings_of(cfg, **flags):
    return fkconfig.build_settings(cfg.get("flamekit", {}), tasks.ROOT, **flags)


def test_defaults_rung(tmp_path, monkeypatch):
    s = settings_of(invoke_config(tmp_path))
    assert s.project_name == "flamekit-demo"
    assert s.tps == 25.0 and s.duration == 60 and s.event == "cpu"
    assert s.compose_files == (tasks.ROOT / "docker" / "docker-compose.yml",)
    assert s.jvm_flags == ("-XX:+PreserveFramePointer", "-XX:+UnlockDiagnosticVMOptions",
                           "-XX:+DebugNonSafepoints")
    assert s.profiler.version == "4.3"


def test_yaml_beats_defaults(tmp_path, monkeypatch):
    cfg = invoke_config(tmp_path, "flamekit:\n  project_name: shop\n  tps: 40\n"
                                  "  jvm_services: [api, worker]\n  profiler:\n    version: '4.2'\n")
    s = settings_of(cfg)
    assert s.project_name == "shop"
    assert s.tps == 40.0
    assert s.jvm_services == ("api", "worker")
    assert s.profiler.version == "4.2"
    assert s.profiler.source == "auto"  # nested keys not given keep their defaults


def test_env_beats_yaml(tmp_path, monkeypatch):
    cfg = invoke_config(tmp_path, "flamekit:\n  project_name: shop\n  tps: 40\n",
                        {"INVOKE_FLAMEKIT_PROJECT_NAME": "from-env", "INVOKE_FLAMEKIT_TPS": "12",
                         "INVOKE_FLAMEKIT_JVM_SERVICES": "a,b,c",
                         "INVOKE_FLAMEKIT_PROFILER_SOURCE": "maven"}, monkeypatch)
    s = settings_of(cfg)
    assert s.project_name == "from-env"
    assert s.tps == 12.0  # invoke casts to the type of the yaml value (an int here)
    assert s.jvm_services == ("a", "b", "c")
    assert s.profiler.source == "maven"


def test_flag_beats_env(tmp_path, monkeypatch):
    cfg = invoke_config(tmp_path, None, {"INVOKE_FLAMEKIT_TPS": "12.5",
                                         "INVOKE_FLAMEKIT_PROJECT_NAME": "from-env"}, monkeypatch)
    s = settings_of(cfg, tps=50, project_name=None, profiler_version="4.5")
    assert s.tps == 50.0
    assert s.project_name == "from-env"  # None means "flag not given"
    assert s.profiler.version == "4.5"
    assert s.overrides == {"tps": 50, "profiler_version": "4.5"}


def test_relative_paths_follow_project_dir(tmp_path):
    s = fkconfig.build_settings({"project_dir": str(tmp_path), "compose_files": "a.yml, b/c.yml"}, tasks.ROOT)
    assert s.compose_files == (tmp_path / "a.yml", tmp_path / "b" / "c.yml")
    # outputs stay in the flamekit checkout
    assert s.flamegraph_dir == tasks.ROOT / "docs" / "perf" / "flamegraphs"


@pytest.mark.parametrize("key,value,needle", [
    ("event", "heap", "unknown event"),
    ("privileges", "root", "unknown privileges"),
    ("cpu_engine", "cycles", "unknown cpu_engine"),
    ("tps", "fast", "must be a number"),
    ("duration", 0, "at least"),
    ("jvm_services", "", "jvm_services is empty"),
    ("images", "cloud", "unknown images mode"),
    ("nonsense_key", 1, "unknown configuration key"),
])
def test_bad_values_are_one_clear_error(key, value, needle):
    with pytest.raises(ConfigError) as e:
        fkconfig.build_settings({key: value}, tasks.ROOT)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_check_service():
    s = fkconfig.build_settings({}, tasks.ROOT)
    assert s.check_service("order-service") == "order-service"
    with pytest.raises(ConfigError, match="unknown service 'billing'"):
        s.check_service("billing")


def test_every_task_has_help_for_each_flag():
    for name, t in tasks.ns.tasks.items():
        assert t.__doc__, f"task {name} has no docstring"
        import inspect
        params = [p for p in inspect.signature(t.body).parameters if p != "c"]
        for p in params:
            assert p in t.help, f"task {name}: flag --{p} has no help text"


def test_user_errors_become_one_line_exits(tmp_path, monkeypatch):
    from invoke import Context, Exit
    cfg = invoke_config(tmp_path)
    with pytest.raises(Exit) as e:
        tasks.profile(Context(cfg), service="billing")
    assert e.value.code == 1
    assert str(e.value.message).startswith("error: unknown service 'billing'")
    assert "\n" not in str(e.value.message)


def test_view_without_runs_is_a_clear_error(tmp_path, monkeypatch):
    from invoke import Context, Exit
    monkeypatch.setenv("INVOKE_FLAMEKIT_RUNS_DIR", str(tmp_path / "none"))
    cfg = invoke_config(tmp_path, env={"INVOKE_FLAMEKIT_RUNS_DIR": str(tmp_path / "none")}, monkeypatch=monkeypatch)
    with pytest.raises(Exit) as e:
        tasks.view(Context(cfg), print_only=True)
    assert "inv profile" in str(e.value.message)


def test_event_accepts_a_comma_list():
    s = fkconfig.build_settings({}, tasks.ROOT, event="cpu,alloc")
    assert s.event == "cpu,alloc"
    with pytest.raises(ConfigError, match="unknown event"):
        fkconfig.build_settings({}, tasks.ROOT, event="cpu,heap")


@pytest.mark.parametrize("value,expected", [("false", False), ("0", False), ("true", True), ("no", False)])
def test_demo_from_the_environment_is_parsed_not_truthy(tmp_path, monkeypatch, value, expected):
    """f: invoke casts an env string to a bool default by truthiness; demo must mean what it says."""
    cfg = invoke_config(tmp_path, env={"INVOKE_FLAMEKIT_DEMO": value}, monkeypatch=monkeypatch)
    assert settings_of(cfg).demo is expected


@pytest.mark.parametrize("flag,value", [("pid", "x"), ("replica", "two")])
def test_non_numeric_flags_are_one_line_errors(tmp_path, monkeypatch, flag, value):
    """g: `inv profile --pid x` is one clear line, not a ValueError traceback."""
    from invoke import Context, Exit
    import flamekit.profiler.install as pinstall
    monkeypatch.setattr(pinstall, "require_profiler", lambda d: {})
    from flamekit.workflow import chain
    monkeypatch.setattr(chain, "compose_target", lambda s, *a, **k: object())
    with pytest.raises(Exit) as e:
        tasks.profile(Context(invoke_config(tmp_path)), **{flag: value})
    assert str(e.value.message) == f"error: --{flag} must be a whole number, got {value!r}"


def test_interrupt_exits_130_in_one_line(tmp_path, monkeypatch):
    from invoke import Context, Exit
    from flamekit.errors import Interrupted
    from flamekit.workflow import review

    def interrupted(*a, **k):
        raise Interrupted("SIGTERM")
    monkeypatch.setattr(review, "report", interrupted)
    with pytest.raises(Exit) as e:
        tasks.report(Context(invoke_config(tmp_path)))
    assert e.value.code == 130 and "SIGTERM" in str(e.value.message) and "\n" not in str(e.value.message)


def test_scale_and_target_flags():
    assert fkconfig.parse_scale(["order-service=3", "gateway=1"]) == {"order-service": 3, "gateway": 1}
    for bad in ("order-service", "=2", "x=0", "x=two"):
        with pytest.raises(ConfigError):
            fkconfig.parse_scale([bad])
    assert fkconfig.build_settings({}, tasks.ROOT, target="swarm").target == "swarm"
    with pytest.raises(ConfigError, match="unknown target"):
        fkconfig.build_settings({"target": "k8s"}, tasks.ROOT)
    assert fkconfig.build_settings({"load_workers": "2"}, tasks.ROOT).load_workers == 2
