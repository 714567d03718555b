"""Override generation: keeps JAVA_TOOL_OPTIONS, skips non-JVM services, rejects unknown ones."""
from __future__ import annotations

from pathlib import Path

import pytest

import tasks
from flamekit import config as fkconfig
from flamekit.targets import override as override
from flamekit.errors import ConfigError

FLAGS = ["-XX:+PreserveFramePointer", "-XX:+UnlockDiagnosticVMOptions", "-XX:+DebugNonSafepoints"]


def settings(tmp_path: Path, **cfg):
    base = {"project_dir": str(tmp_path), "compose_files": "compose.yml",
            "jvm_services": "api,worker", "profiling_override": ""}
    base.update(cfg)
    return fkconfig.build_settings(base, tasks.ROOT)


RESOLVED = {"services": {
    "api": {"image": "x", "environment": {"JAVA_TOOL_OPTIONS": "-Xss512k -Dapp.mode=prod", "OTHER": "1"}},
    "worker": {"image": "y", "environment": ["JAVA_TOOL_OPTIONS=-XX:+PreserveFramePointer", "A=b"]},
    "db": {"image": "postgres"},
}}


def test_keeps_existing_tool_options_and_appends_flags(tmp_path):
    doc = override.generate(settings(tmp_path), RESOLVED)
    api = doc["services"]["api"]["environment"]["JAVA_TOOL_OPTIONS"]
    assert api.startswith("-Xss512k -Dapp.mode=prod ")
    assert api.split()[2:] == FLAGS
    worker = doc["services"]["worker"]["environment"]["JAVA_TOOL_OPTIONS"]
    # a flag the service already sets is not repeated
    assert worker.split() == FLAGS
    # nothing else of the environment is written by the override
    assert set(doc["services"]["api"]["environment"]) == {"JAVA_TOOL_OPTIONS"}


def test_skips_services_not_configured_as_jvms(tmp_path):
    doc = override.generate(settings(tmp_path), RESOLVED)
    assert set(doc["services"]) == {"api", "worker"}


def test_unknown_service_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        override.generate(settings(tmp_path, jvm_services="api,billing"), RESOLVED)
    assert "'billing' is not in the compose project" in str(e.value)
    assert "api, db, worker" in str(e.value)


def test_privileges_seed_and_minimal(tmp_path):
    seed = override.generate(settings(tmp_path), RESOLVED)["services"]["api"]
    assert seed["cap_add"] == ["SYS_PTRACE"] and seed["security_opt"] == ["seccomp:unconfined"]
    minimal = override.generate(settings(tmp_path, privileges="minimal"), RESOLVED)["services"]["api"]
    assert minimal["cap_add"] == ["PERFMON"] and "security_opt" not in minimal


def test_mount_is_read_only_at_container_path(tmp_path):
    s = settings(tmp_path, profiler={"dir": str(tmp_path / "prof")})
    vol = override.generate(s, RESOLVED)["services"]["api"]["volumes"]
    assert vol == ["./prof:/opt/async-profiler:ro"]
    outside = settings(tmp_path, profiler={"dir": "/srv/ap"})
    assert override.generate(outside, RESOLVED)["services"]["api"]["volumes"] == ["/srv/ap:/opt/async-profiler:ro"]


def test_dollar_is_escaped_for_compose(tmp_path):
    resolved = {"services": {"api": {"environment": {"JAVA_TOOL_OPTIONS": "-Dprice=$5"}}, "worker": {}}}
    doc = override.generate(settings(tmp_path), resolved)
    assert doc["services"]["api"]["environment"]["JAVA_TOOL_OPTIONS"].startswith("-Dprice=$$5 ")


def test_configurable_flags(tmp_path):
    doc = override.generate(settings(tmp_path, jvm_flags="-XX:+DebugNonSafepoints"), RESOLVED)
    assert doc["services"]["worker"]["environment"]["JAVA_TOOL_OPTIONS"] == \
        "-XX:+PreserveFramePointer -XX:+DebugNonSafepoints"


def test_yaml_round_trips(tmp_path):
    import yaml
    doc = override.generate(settings(tmp_path), RESOLVED)
    text = override.render(doc)
    assert text.startswith("# flamekit profiling override")
    assert yaml.safe_load(text) == doc


def test_image_env_tool_options_are_kept(tmp_path):
    """h: options the image gives its JVM (ENV JAVA_TOOL_OPTIONS) survive the override."""
    resolved = {"services": {"api": {"image": "x"}, "worker": {"image": "y", "environment": {"JAVA_TOOL_OPTIONS": "-Dw=1"}}}}
    envs = {"api": {"JAVA_TOOL_OPTIONS": "-javaagent:/apm.jar -Dapm=on", "PATH": "/bin"}, "worker": {"JAVA_TOOL_OPTIONS": "-Dimage=1"}}
    doc = override.generate(settings(tmp_path), resolved, envs)
    assert doc["services"]["api"]["environment"]["JAVA_TOOL_OPTIONS"].split() == ["-javaagent:/apm.jar", "-Dapm=on"] + FLAGS
    # compose's own value replaces the image's, as compose itself does
    assert doc["services"]["worker"]["environment"]["JAVA_TOOL_OPTIONS"].split() == ["-Dw=1"] + FLAGS
    s = settings(tmp_path)
    assert override.expected_jvm_options(s, resolved, "api", envs["api"])[:2] == ("-javaagent:/apm.jar", "-Dapm=on")


def test_privileges_none_and_minimal_without_perfmon(tmp_path):
    """i: none adds nothing; minimal adds PERFMON only where the engine knows it."""
    none = override.generate(settings(tmp_path, privileges="none"), RESOLVED)["services"]["api"]
    assert "cap_add" not in none and "security_opt" not in none
    old = override.generate(settings(tmp_path, privileges="minimal"), RESOLVED, perfmon_known=False)["services"]["api"]
    assert "cap_add" not in old and "security_opt" not in old


def test_committed_demo_override_matches_generator():
    """docker/docker-compose-profiling.yml is exactly what the generator makes for the demo."""
    s = fkconfig.build_settings({}, tasks.ROOT)
    demo_services = {name: {"environment": {"JAVA_OPTS": "-Xmx256m"}} for name in s.jvm_services}
    expected = override.render(override.generate(s, {"services": demo_services}))
    assert (tasks.ROOT / "docker" / "docker-compose-profiling.yml").read_text() == expected


def test_override_path_choice(tmp_path):
    committed = tmp_path / "ov.yml"
    committed.write_text("services: {}\n")
    s = settings(tmp_path, profiling_override=str(committed))
    assert override.override_path(s) == committed
    s2 = fkconfig.build_settings({"project_dir": str(tmp_path), "profiling_override": str(committed),
                                  "jvm_services": "api"}, tasks.ROOT, privileges="minimal")
    assert override.override_path(s2) == override.generated_path(s2)
    s3 = settings(tmp_path)
    assert override.override_path(s3).name == "compose-profiling.flamekit-demo.yml"


@pytest.mark.parametrize("key,value", [("jvm_flags", "-XX:+DebugNonSafepoints"), ("privileges", "none")])
def test_configured_flags_and_privileges_never_use_the_committed_file(tmp_path, key, value):
    """e: jvm_flags/privileges from invoke.yaml or INVOKE_FLAMEKIT_* count, not only task flags."""
    committed = tmp_path / "ov.yml"
    committed.write_text("services: {}\n")
    base = {"project_dir": str(tmp_path), "profiling_override": str(committed), "jvm_services": "api"}
    assert override.override_path(fkconfig.build_settings(base, tasks.ROOT)) == committed
    from_config = fkconfig.build_settings({**base, key: value}, tasks.ROOT)
    assert override.override_path(from_config) == override.generated_path(from_config)
