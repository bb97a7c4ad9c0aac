rule plot_env:
    input:
        hf_data=env_hf_data,
    output:
        plot=report(
            "results/plots/{env}_multi_trial_graph_mean_returns_ma_vs_frames.png",
            caption="../report/learning_curves.rst",
            category="Learning curves",
            labels={"env": "{env}"},
        ),
    log:
        "results/logs/plot_env/{env}.log",
    shell:
        JOB
        + " plot_env {log:q}"
        + " wildcards.env={wildcards.env:q}"
        + " input.hf_data={input.hf_data!r:q}"
        + " output.plot={output.plot:q}"
