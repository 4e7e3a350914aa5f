"""Distributed data parallel set-up from ``torchrun``'s environment (and SageMaker's)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world() -> World:
    """One process unless ``torchrun`` started several (``WORLD_SIZE`` > 1).

    On SageMaker, launch with ``torchrun --nnodes $SM_NUM_HOSTS --node_rank <index of
    SM_CURRENT_HOST in SM_HOSTS> --master_addr <first of SM_HOSTS> --nproc_per_node
    $SM_NUM_GPUS``; the training script itself only reads torchrun's variables.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    world = World(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), size)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend=backend)
    return world


def check_replicas_agree(model: torch.nn.Module) -> None:
    """Raise if the processes' copies of the weights differ.

    Data parallel training keeps them identical only if every parameter that trains was
    synchronised; one left out (a module unfrozen after DDP was built, say) diverges
    silently. Called once at the end: one number per tensor, gathered as min and max.
    """
    fingerprint = torch.stack([p.detach().double().sum() for p in model.parameters()])
    low, high = fingerprint.clone(), fingerprint.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    differ = ~torch.isclose(low, high, rtol=1e-9, atol=0)
    if differ.any():
        names = [n for (n, _), d in zip(model.named_parameters(), differ, strict=True) if d]
        raise RuntimeError(f"data parallel replicas disagree on {len(names)} tensors: {names[:5]}")
