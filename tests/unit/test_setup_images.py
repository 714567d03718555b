"""Base image decisions with an injected runner: no Docker, no debootstrap."""
from __future__ import annotations

import pytest

from flamekit.errors import ImageError
from flamekit.setup import images
from flamekit.setup.engine import Result
from tests.unit.test_setup_engine import FakeRunner

INSPECT = ("docker", "image", "inspect", "--format", "{{.Id}}")


def missing(*names):
    return [(INSPECT + (n,), Result(1, "", "no such image")) for n in names]


@pytest.fixture
def built(monkeypatch):
    calls = []
    monkeypatch.setattr(images, "build_offline_image", lambda tags, *a, **k: calls.append(list(tags)) or 1.0)
    return calls


def test_images_default_present():
    r = FakeRunner()
    choice = images.ensure_images("auto", ("b:1", "r:1"), ("ob", "or"), "m", r)
    assert choice.how == "default" and choice.compose_env() == {"FLAMEKIT_BUILD_IMAGE": "b:1",
                                                                "FLAMEKIT_BASE_IMAGE": "r:1"}


def test_images_fall_back_to_offline_when_pull_fails(built):
    r = FakeRunner(missing("b:1", "ob") + [(("docker", "pull"), Result(1, "", "dial tcp: no such host"))])
    choice = images.ensure_images("auto", ("b:1", "r:1"), ("ob", "or"), "m", r)
    assert choice.how == "offline" and (choice.build_image, choice.base_image) == ("ob", "or")
    assert any(c[:2] == ["docker", "pull"] for c in r.calls)
    assert built == [["ob"]]  # "or" is present per the fake runner: reused, not rebuilt


def test_auto_reuses_offline_images_without_pulling():
    r = FakeRunner(missing("b:1"))
    choice = images.ensure_images("auto", ("b:1", "r:1"), ("ob", "or"), "m", r)
    assert choice.how == "offline"
    assert not any(c[:2] == ["docker", "pull"] for c in r.calls)


def test_images_default_mode_fails_clearly():
    r = FakeRunner([(("docker", "image"), Result(1)), (("docker", "pull"), Result(1, "", "no such host"))])
    with pytest.raises(ImageError) as e:
        images.ensure_images("default", ("b:1", "r:1"), ("ob", "or"), "m", r)
    assert "inv base-images --offline" in str(e.value)


def test_unknown_mode():
    with pytest.raises(ImageError, match="unknown images mode"):
        images.ensure_images("sometimes", ("b", "r"), ("ob", "or"), "m", FakeRunner())


def test_offline_builds_both_images_with_one_debootstrap(built):
    r = FakeRunner([(("docker", "image"), Result(1))])
    choice = images.ensure_images("offline", ("b", "r"), ("ob", "or"), "m", r)
    assert built == [["ob", "or"]]   # one build, tagged under both names
    assert (choice.build_image, choice.base_image, choice.how) == ("ob", "or", "offline")


def test_offline_runtime_image_is_a_tag_of_an_existing_build_image(built):
    r = FakeRunner(missing("or"))
    images.ensure_images("offline", ("b", "r"), ("ob", "or"), "m", r)
    assert built == []
    assert ["docker", "tag", "ob", "or"] in r.calls


def test_offline_rebuild_rebuilds_both(built):
    r = FakeRunner()
    images.ensure_images("offline", ("b", "r"), ("ob", "or"), "m", r, rebuild=True)
    assert built == [["ob", "or"]]


def test_build_offline_image_debootstraps_once_and_tags(monkeypatch, tmp_path):
    r = FakeRunner()
    monkeypatch.setattr(images.shutil, "which", lambda name: "/usr/sbin/debootstrap")
    said = []
    images.build_offline_image(["flamekit/jdk17:bookworm", "flamekit/jre17:bookworm"], "http://mirror/debian", r,
                               workdir=tmp_path, is_root=True, say=said.append)
    boots = [c for c in r.calls if c[0] == "debootstrap"]
    assert len(boots) == 1
    assert "--include=openjdk-17-jdk-headless,procps" in boots[0] and boots[0][-1] == "http://mirror/debian"
    imports = [c for c in r.calls if c[:2] == ["docker", "import"]]
    assert len(imports) == 1 and imports[0][-1] == "flamekit/jdk17:bookworm"
    assert ["docker", "tag", "flamekit/jdk17:bookworm", "flamekit/jre17:bookworm"] in r.calls
    assert list(tmp_path.iterdir()) == []    # the rootfs and its tarball are gone


def test_build_offline_image_failure_cleans_up_and_explains(monkeypatch, tmp_path):
    r = FakeRunner([(("debootstrap",), Result(1, "", "E: Failed getting release file"))])
    monkeypatch.setattr(images.shutil, "which", lambda name: "/usr/sbin/debootstrap")
    with pytest.raises(ImageError, match="debootstrap for ob failed: E: Failed getting release file"):
        images.build_offline_image(["ob", "or"], "http://m", r, workdir=tmp_path, is_root=True)
    assert list(tmp_path.iterdir()) == []
    assert not any(c[:2] == ["docker", "import"] for c in r.calls)


def test_build_offline_image_needs_root():
    with pytest.raises(ImageError, match="needs root"):
        images.build_offline_image(["ob"], "http://m", FakeRunner(), is_root=False)
