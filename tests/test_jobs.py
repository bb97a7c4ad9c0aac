"""Every rule's command and the one job entry (slm_bench/jobs.py) agree: a dry run's commands,
read back as the entry reads them, name a stage and give it what it reads."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from workflow_helpers import REPO, make_workdir, snakemake, tiny_config

from slm_bench.config_model import BenchConfig
from slm_bench.errors import BenchError
from slm_bench.jobs import CONFIG_VARIABLE, STAGES, Job
from slm_bench.matrix.config import load_config


def printed_commands(output: str) -> list[list[str]]:
    """The job commands a `snakemake -n -p` printed, as argv after the entry."""
    commands = []
    prefix = 'Shell command: "$SLM_BENCH_PYTHON" -c "$SLM_BENCH_JOB" '
    for line in output.splitlines():
        if line.startswith(prefix):
            commands.append(shlex.split(line.removeprefix(prefix)))
    return commands


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("jobs"), tiny_config())
    result = snakemake(workdir, "-n", "-p", "all", "stats", "results/audit.md")
    assert result.returncode == 0, result.stdout[-3000:]
    return workdir, printed_commands(result.stdout)


def test_every_planned_command_names_a_stage_and_reads_back(planned, monkeypatch):
    workdir, commands = planned
    monkeypatch.chdir(workdir)
    config_files = list((workdir / ".snakemake/slm-bench").glob("config-*.pickle"))
    assert len(config_files) == 1
    monkeypatch.setenv(CONFIG_VARIABLE, str(config_files[0]))
    validated = BenchConfig.of(load_config(yaml.safe_load((workdir / "config.yaml").read_text())))
    rules = set()
    for argv in commands:
        job = Job.from_argv(argv)
        rules.add(job.rule)
        assert job.rule in STAGES
        assert job.log[0].startswith(f"results/logs/{job.rule}")
        assert job.config == validated  # the config as the plan validated it, defaults filled
        if "cell" in job.params:  # the param as the Snakefile computed it, read back
            cell = job.cell()
            assert (cell.env, cell.algo) == (job.wildcards["env"], job.wildcards["algo"])
    expected = {"validate_spec", "run_cell", "upload_run", "extract_metrics", "pull_run_folder"}
    expected |= {"write_row", "plot_env", "write_benchmarks", "cell_stats", "table_stats"}
    assert expected | {"audit_specs"} <= rules


def test_every_rule_but_install_table_runs_the_job_entry_for_itself():
    """One script style: no rule runs a script of its own; each command names its own stage."""
    rules = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        text = path.read_text()
        assert "script:" not in text, path
        for name, body in re.findall(
            r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)*)", text, re.M
        ):
            rules[name] = body
    for name, body in rules.items():
        if "shell:" not in body:
            continue  # a target rule: inputs only
        if name == "install_table":  # a hard link and a rename, in the shell itself
            continue
        forms = (f'cell_job("{name}")', f'JOB\n        + " {name} {{log:q}}"')
        forms += (f'f"{{JOB}} {name} {{{{log:q}}}}',)
        assert any(form in body for form in forms), name
    assert set(STAGES) <= set(rules)


def test_a_command_no_rule_writes_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv(CONFIG_VARIABLE, str(tmp_path / "absent.pickle"))
    with pytest.raises(BenchError, match="absent.pickle: No such file"):
        Job.from_argv(["write_row", "results/logs/write_row/x.log"])
    monkeypatch.delenv(CONFIG_VARIABLE)
    with pytest.raises(BenchError, match=f"{CONFIG_VARIABLE} is not set"):
        Job.from_argv(["write_row", "results/logs/write_row/x.log"])


def test_only_a_former_script_directive_counts_as_unchanged_code():
    """The text Snakemake recorded for a rule that ran a script (seen in .snakemake/metadata of a
    build made then) is not a code change; a recorded shell command still is compared."""
    from slm_bench.script_records import is_former_script

    assert is_former_script('        "../scripts/run_cell.py"\n')
    assert is_former_script('        "../scripts/write_benchmarks.py"\n')
    assert not is_former_script('"$SLM_BENCH_PYTHON" -c "$SLM_BENCH_JOB" run_cell {log:q}')
    assert not is_former_script('tmp={output.table:q}.$$.tmp && ln -f {input.staged:q} "$tmp"')
    assert not is_former_script(None)
