# On demand: `snakemake status` prints where every cell stands; `snakemake cancel` stops every
# remote run the pipeline recorded (dstack runs; on the Slurm route, its Slurm jobs). Neither is
# part of `all`. Neither has an output: a rule without one is never up to date, so both run
# every time they are asked (a second `cancel` stops what the first could not reach). The table
# is also kept in results/status.txt.


rule status:
    log:
        "results/logs/status.log",
    params:
        slurm=lambda wildcards: on_slurm(),
    shell:
        f"{JOB} status {{log:q}} params.slurm={{params.slurm!r:q}}"


rule cancel:
    log:
        "results/logs/cancel.log",
    params:
        slurm=lambda wildcards: on_slurm(),
    shell:
        f"{JOB} cancel {{log:q}} params.slurm={{params.slurm!r:q}}"
