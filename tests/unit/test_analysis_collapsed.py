"""The collapsed-stack reader: frames, profiles, sample counts."""
from __future__ import annotations


import pytest

from flamekit.analysis.collapsed import clean_frame, count_samples, parse_collapsed
from flamekit.errors import ReportError


@pytest.mark.parametrize("raw, clean", [
    ("demo/order/PricingEngine.priceOrder_[j]", "demo.order.PricingEngine.priceOrder"),
    ("demo/order/PricingEngine.priceOrder_[i]", "demo.order.PricingEngine.priceOrder"),
    ("demo/order/PricingEngine.priceOrder_[0]", "demo.order.PricingEngine.priceOrder"),
    ("demo/order/PricingEngine.priceOrder_[1]", "demo.order.PricingEngine.priceOrder"),
    ("__x64_sys_futex_[k]", "__x64_sys_futex"),
    ("java.lang.String_[i]", "java.lang.String"),
    ("byte[]", "byte[]"),
    ("byte[]_[k]", "byte[]"),
    ("java/lang/String[]_[k]", "java.lang.String[]"),
    ("demo/order/Svc$$Lambda$45/0x0000000800c0b000.apply_[j]", "demo.order.Svc$$Lambda$45.apply"),
    # jfrconv writes the hidden-class address as a `.0x...` segment: keep the method name
    ("demo/order/HttpIo$$Lambda$76.0x00007fe4ed085a70.handle_[j]", "demo.order.HttpIo$$Lambda$76.handle"),
    ("java/lang/invoke/LambdaForm$MH.0x00007fe4ed08e000.invoke_[j]", "java.lang.invoke.LambdaForm$MH.invoke"),
    ("demo/order/Svc$$Lambda$45/0x0000000800c0b000", "demo.order.Svc$$Lambda$45"),
    ("demo/order/Svc$$Lambda$45.0x0000000800c0b000", "demo.order.Svc$$Lambda$45"),
    ("[order-worker-3 tid=123]", "[order-worker-3 tid=123]"),
    ("/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
    ("JavaThread::thread_main_inner", "JavaThread::thread_main_inner"),
    ("[unknown]", "[unknown]"),
])
def test_clean_frame(raw, clean):
    assert clean_frame(raw) == clean


def test_parse_collapsed_text_merges_cleaned_stacks_and_skips_junk(caplog):
    text = ("a/B.c_[j];d/E.f_[j] 3\n"
            "\n"
            "a/B.c_[i];d/E.f_[0] 2\n"
            "no count here\n"
            "a/B.c 5\n")
    prof = parse_collapsed(text)
    assert prof.total == 10
    assert prof.stacks == {("a.B.c", "d.E.f"): 5, ("a.B.c",): 5}
    assert "malformed" in caplog.text


def test_parse_collapsed_reads_paths_and_keeps_spaces_in_thread_frames(tmp_path):
    f = tmp_path / "cpu.collapsed"
    f.write_text("[order-worker-3 tid=123];x/Y.z 7\n")
    for arg in (f, str(f)):
        prof = parse_collapsed(arg)
        assert prof.stacks == {("[order-worker-3 tid=123]", "x.Y.z"): 7}
        assert prof.source == str(f)


def test_parse_collapsed_missing_file_is_report_error(tmp_path):
    with pytest.raises(ReportError) as exc:
        parse_collapsed(tmp_path / "nope.collapsed")
    assert "nope.collapsed" in str(exc.value)


def test_lambda_addresses_do_not_split_a_method_across_runs():
    a = parse_collapsed("demo/A$$Lambda$7.0x00007fe4ed085a70.run_[j];demo/A.work 3\n")
    b = parse_collapsed("demo/A$$Lambda$7.0x00007f4e19001c50.run_[j];demo/A.work 3\n")
    assert a.stacks == b.stacks == {("demo.A$$Lambda$7.run", "demo.A.work"): 3}


# Copied from docs/perf/runs/20261127-073750/order-service/alloc.collapsed (trimmed to 4 lines).


def test_count_samples_of_text_and_path(tmp_path):
    text = "a;b 3\n\nno count here\n[w tid=1];a 4\nx 0\n"
    assert count_samples(text) == 7
    assert count_samples("") == 0
    f = tmp_path / "cpu.collapsed"
    f.write_text(text)
    assert count_samples(f) == count_samples(str(f)) == 7
    assert count_samples(f) == parse_collapsed(f).total
    with pytest.raises(ReportError, match="nope.collapsed"):
        count_samples(tmp_path / "nope.collapsed")


def test_weighted_profile_samples_come_from_the_count_never_the_weight():
    prof = parse_collapsed("a;b 900000\n", weight="bytes", sample_count=12)
    assert prof.weighted and prof.total == 900000 and prof.samples == 12
    assert parse_collapsed("a;b 900000\n", weight="bytes").samples == 0
    assert parse_collapsed("a;b 9\n").samples == 9
