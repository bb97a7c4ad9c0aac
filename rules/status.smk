# On demand: `snakemake status` prints where every cell stands; `snakemake cancel` stops every
# remote run the pipeline recorded. Neither is part of `all`, and both run whenever asked.


rule status:
    output:
        table=temp("results/status.txt"),
    log:
        "results/logs/status.log",
    conda:
        "../envs/slm-bench.yaml"
    script:
        "../scripts/status.py"


rule cancel:
    output:
        done=temp("results/cancel.txt"),
    log:
        "results/logs/cancel.log",
    conda:
        "../envs/slm-bench.yaml"
    script:
        "../scripts/cancel.py"
