import pytest

from clickstream.errors import InvariantError
from clickstream.lake.report import InputFileReport, PartitionReport, RunReport, ingested_keys


def _report(**kw) -> RunReport:
    base = dict(
        run_id="r",
        engine="duckdb",
        lake="l",
        started_at="t",
        rows_read=10,
        rows_written=7,
        rows_rejected=2,
        rejected_by_reason={"invalid_url": 2},
        rows_duplicate=1,
        partitions=[PartitionReport(2024, 1, 7)],
        input_files=[InputFileReport("a", 1, 1, 10)],
    )
    base.update(kw)
    return RunReport(**base)


def test_consistent_report_passes() -> None:
    _report().check()


@pytest.mark.parametrize(
    "change",
    [
        {"rows_read": 11},
        {"rejected_by_reason": {"invalid_url": 1}},
        {"partitions": [PartitionReport(2024, 1, 6)]},
        {"input_files": [InputFileReport("a", 1, 1, 9)]},
        {"rejected_by_reason": {"bogus": 2}},
    ],
)
def test_inconsistent_report_is_refused(change) -> None:
    with pytest.raises(InvariantError):
        _report(**change).check()


def test_round_trip_and_ingested_keys_reset_on_full_refresh() -> None:
    first = _report(run_id="1")
    second = _report(run_id="2", full_refresh=True, input_files=[InputFileReport("b", 2, 2, 10)])
    assert RunReport.from_dict(first.to_dict()) == first
    assert ingested_keys([first]) == {("a", 1, 1)}
    assert ingested_keys([first, second]) == {("b", 2, 2)}
