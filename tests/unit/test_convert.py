

def test_batch_status_reads_each_jobs_line_and_marks_the_unreached_missing():
    from flamekit.capture.convert import MISSING, batch_status
    out = ("Converting a.jfr -> cpu.collapsed # 0.03 s\n\n@@flamekit-job 0 ok\n"
           "@@flamekit-job 1 failed java.io.FileNotFoundException: x.jfr (No such file)\n"
           "@@flamekit-job 7 ok\n")  # an index beyond the jobs is ignored
    st = batch_status(out, 3)
    assert st[0] is None
    assert st[1] == "java.io.FileNotFoundException: x.jfr (No such file)"
    assert st[2] is MISSING


def test_run_batch_without_java_leaves_every_job_to_the_one_by_one_path(monkeypatch, tmp_path):
    from flamekit.capture import convert
    monkeypatch.setattr(convert, "_java", lambda: None)
    st = convert.run_batch(tmp_path / "bin" / "jfrconv", [["--cpu", "a.jfr", "a.collapsed"]])
    assert st == [convert.MISSING]
