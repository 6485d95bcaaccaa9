"""Launches on CPU that accelerate (1.15) does not carry out as asked: `accelerate launch --cpu --num_processes N`
(the N gloo ranks accelerate's CPU launcher leaves to mpirun) and FSDP2 over gloo (recognised here, enabled in
`longkit.train.trainer.enable_cpu_fsdp`).

accelerate (1.15) runs a `--cpu` launch through its simple launcher: it starts the script once and expects an
MPI launcher (`--mpirun_hostfile`) to have started the other ranks. Without one, the single process would
train alone, a different run from the one asked for. longkit recognises that launch (the CPU flag and a
master address are set, no world size), reads N from the launching `accelerate` command line, and starts the
same longkit command as N processes with torch's own launcher (torch.distributed.run); each joins a gloo
process group, exactly as `configs/accelerate/cpu-ddp.yaml` or `torchrun --nproc_per_node N` would.
"""

from __future__ import annotations

import os
import subprocess
import sys

# What accelerate's CPU launch reads for the world size (accelerate.utils.get_cpu_distributed_information).
_WORLD_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def cpu_fsdp_requested() -> bool:
    """An FSDP launch (accelerate's FSDP config) of several processes on a machine without CUDA: FSDP2 over gloo."""
    import torch

    return (
        os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")
        and int(os.environ.get("WORLD_SIZE", "1")) > 1
        and not torch.cuda.is_available()
    )


def is_single_cpu_launch() -> bool:
    """True in the one process accelerate's `--cpu` launcher started for a several-process launch."""
    return (
        os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
        and "MASTER_ADDR" in os.environ
        and not any(v in os.environ for v in _WORLD_VARS)
    )


def requested_processes(cmdline: list[str]) -> int | None:
    """N from an `accelerate launch ...` command line (its flags or its config file); None if not one."""
    if "launch" not in cmdline:
        return None
    rest = cmdline[cmdline.index("launch") + 1 :]
    import logging

    quiet = logging.getLogger("accelerate.commands.launch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # accelerate already printed its defaults warning when it launched this process
    try:
        from accelerate.commands.launch import _validate_launch_command, launch_command_parser

        args, _ = launch_command_parser().parse_known_args(rest)
        if args.num_processes is None and args.config_file is None:
            return None
        args, _, _ = _validate_launch_command(args)
    except (Exception, SystemExit):  # not a launch line accelerate itself can read
        return None
    finally:
        quiet.setLevel(level)
    n = getattr(args, "num_processes", None)
    return int(n) if n else None


def parent_cmdline() -> list[str]:
    """The command line of the process that started this one ([] if it cannot be read)."""
    try:
        import psutil

        cmdline: list[str] = psutil.Process(os.getppid()).cmdline()
        return cmdline
    except Exception:
        return []


def relaunch_as_ranks(n: int) -> int:
    """Run this longkit command again as n ranks under torch.distributed.run; returns its exit status."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(n),
        "--master_addr",
        os.environ["MASTER_ADDR"],
        "--master_port",
        os.environ.get("MASTER_PORT", "29500"),
        "-m",
        "longkit",
        *sys.argv[1:],
    ]
    print(
        f"longkit: accelerate's --cpu launcher starts {n} processes only through mpirun; starting the {n} "
        "gloo ranks with torch.distributed.run",
        file=sys.stderr,
        flush=True,
    )
    return subprocess.call(cmd)
