"""How Slurm's command output is read, and what AiKore asks of sbatch (no cluster needed)."""

from __future__ import annotations

import pytest

from aikore.supervisor.slurm import (
    JobEnd,
    JobRequest,
    gres_gpus,
    parse_duration,
    parse_exit_code,
    parse_fields,
    parse_size,
)


def test_scontrol_records_keep_values_with_spaces() -> None:
    line = "NodeName=node2 Arch=x86_64 OS=Linux 6.1.0 #1 SMP PREEMPT_DYNAMIC Gres=gpu:2 Reason=Not responding [root@t]"
    fields = parse_fields(line)
    assert fields["OS"] == "Linux 6.1.0 #1 SMP PREEMPT_DYNAMIC"
    assert fields["Gres"] == "gpu:2"
    assert fields["Reason"] == "Not responding [root@t]"


@pytest.mark.parametrize(("text", "code"), [("3:0", 3), ("0:15", 128 + 15), ("0:0", 0), ("", None), ("x:y", None)])
def test_exit_codes_read_like_a_shell_shows_them(text: str, code: int | None) -> None:
    assert parse_exit_code(text) == code


@pytest.mark.parametrize(("gres", "gpus"), [
    ("gpu:2", 2), ("gpu:a100:4(S:0-1)", 4), ("gpu:1(IDX:0),shard:0", 1), ("gpu:(null):2(IDX:0-1)", 2), ("", 0),
    ("(null)", 0), ("gpu:a100:2,gpu:v100:1", 3),
])
def test_gpus_are_counted_from_any_gres_form(gres: str, gpus: int) -> None:
    assert gres_gpus(gres) == gpus


def test_sbatch_arguments_name_only_what_the_instance_asked_for() -> None:
    assert JobRequest("gpu").sbatch_args() == ["--partition=gpu"]
    assert JobRequest("gpu", 2, "node2", "4:00:00", "lab").sbatch_args() == [
        "--partition=gpu", "--gres=gpu:2", "--nodelist=node2", "--time=4:00:00", "--account=lab"]


def test_job_end_says_state_and_reason() -> None:
    assert JobEnd("FAILED", "NonZeroExitCode", 3).describe(12) == "Slurm job 12 FAILED, NonZeroExitCode"
    assert JobEnd("CANCELLED", "None", 143).describe(12) == "Slurm job 12 CANCELLED"


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:00:00", 0), ("01:02:03", 3723), ("02:03.500", 123.5), ("1-00:00:01", 86401), ("", None), ("x", None),
])
def test_sstat_durations_read_as_seconds(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "size"), [("63636K", 63636 * 1024), ("1.5G", 3 * 2**29), ("512", 512), ("", None)])
def test_sstat_sizes_read_as_bytes(text: str, size: int | None) -> None:
    assert parse_size(text) == size
