"""flamekit.targets.swarm.stack_document and override.generate_swarm: the stack file a compose
model becomes (no engine needed)."""
from __future__ import annotations

from pathlib import Path

import pytest

from flamekit import config as fkconfig
from flamekit.errors import StackError
from flamekit.targets import override as fkoverride
from flamekit.targets.swarm import stack_document

ROOT = Path(__file__).resolve().parents[2]

RESOLVED = {
    "name": "fkswarm",
    "services": {
        "gateway": {"image": "flamekit-demo/gateway:latest", "build": {"context": "."},
                    "ports": [{"mode": "ingress", "target": 8080, "published": "18090", "protocol": "tcp"}],
                    "depends_on": {"order-service": {"condition": "service_healthy"}},
                    "environment": {"JAVA_OPTS": "-Xmx256m", "ODD": "a$b"}, "mem_limit": "536870912",
                    "security_opt": ["seccomp:unconfined"], "entrypoint": None, "command": None,
                    "networks": {"default": None}},
        "order-service": {"image": "flamekit-demo/order-service:latest", "networks": {"default": None},
                          "environment": {"JAVA_TOOL_OPTIONS": "-Dfoo=1"}},
    },
    "networks": {"default": {"name": "fkswarm_default", "ipam": {}}},
}


def settings(**over):
    return fkconfig.build_settings({"project_name": "fkswarm", **over}, ROOT)


def test_stack_document_is_what_swarm_accepts():
    doc = stack_document(RESOLVED, None, {"order-service": 2})
    assert doc["version"] == "3.8" and "name" not in doc
    gw = doc["services"]["gateway"]
    for key in ("build", "depends_on", "mem_limit", "security_opt", "entrypoint", "command"):
        assert key not in gw
    assert gw["ports"] == [{"target": 8080, "published": 18090, "protocol": "tcp", "mode": "host"}]
    assert gw["deploy"] == {"endpoint_mode": "dnsrr", "replicas": 1,
                            "resources": {"limits": {"memory": "536870912"}}}
    assert gw["networks"] == ["default"]
    assert gw["environment"]["ODD"] == "a$$b"      # stack deploy interpolates again
    assert doc["services"]["order-service"]["deploy"]["replicas"] == 2
    assert doc["networks"] == {"default": {"driver": "overlay"}}


def test_short_port_syntax():
    r = {"services": {"a": {"image": "x", "ports": ["8081:8080", "9000"]}}}
    assert stack_document(r)["services"]["a"]["ports"] == [
        {"target": 8080, "published": 8081, "mode": "host"}, {"target": 9000, "mode": "host"}]


def test_a_service_without_image_cannot_be_deployed():
    with pytest.raises(StackError, match="no image"):
        stack_document({"services": {"a": {"build": {"context": "."}}}})


def test_swarm_override_has_no_seccomp_and_an_absolute_bind_mount():
    s = settings(jvm_services="gateway,order-service")
    ov = fkoverride.generate_swarm(s, RESOLVED, {"gateway": {}, "order-service": {}})
    gw = ov["services"]["gateway"]
    assert gw["cap_add"] == ["SYS_PTRACE"] and "security_opt" not in gw
    [vol] = gw["volumes"]
    assert vol == {"type": "bind", "source": str(s.profiler.dir.resolve()), "target": "/opt/async-profiler",
                   "read_only": True}
    assert Path(vol["source"]).is_absolute()
    # the service's own options first, then the flags
    assert ov["services"]["order-service"]["environment"]["JAVA_TOOL_OPTIONS"].startswith("-Dfoo=1 -XX:")


def test_override_merges_into_the_stack():
    s = settings(jvm_services="gateway,order-service")
    ov = fkoverride.generate_swarm(s, RESOLVED, {"gateway": {}, "order-service": {}})
    doc = stack_document(RESOLVED, ov, {"order-service": 2})
    order = doc["services"]["order-service"]
    assert order["cap_add"] == ["SYS_PTRACE"] and order["volumes"][0]["type"] == "bind"
    assert order["environment"]["JAVA_TOOL_OPTIONS"].startswith("-Dfoo=1 -XX:+PreserveFramePointer")
    assert doc["services"]["gateway"]["environment"]["JAVA_OPTS"] == "-Xmx256m"


def test_privileges_none_adds_no_capability():
    s = settings(jvm_services="gateway", privileges="none")
    assert "cap_add" not in fkoverride.generate_swarm(s, RESOLVED)["services"]["gateway"]


def test_dollar_reaches_the_jvm_once_escaped():
    s = settings(jvm_services="gateway", jvm_flags="-Dx=$HOME")
    ov = fkoverride.generate_swarm(s, RESOLVED)
    assert ov["services"]["gateway"]["environment"]["JAVA_TOOL_OPTIONS"] == "-Dx=$HOME"
    assert stack_document(RESOLVED, ov)["services"]["gateway"]["environment"]["JAVA_TOOL_OPTIONS"] == "-Dx=$$HOME"


def test_an_object_removed_while_listed_is_still_going_not_an_error():
    from flamekit.targets.swarm import vanished_in_between
    # what dockerd 20.10 printed in CI when `docker network ls` raced `docker stack rm`
    assert vanished_in_between("Error response from daemon: network qo42q4hgn7fgvatm1pgui18fb not found")
    assert vanished_in_between("Error: No such service: fk_order-service")
    assert not vanished_in_between("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
    assert not vanished_in_between("Error response from daemon: This node is not a swarm manager.")
