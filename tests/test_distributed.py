"""``gpt_reference.distributed.average_gradients`` computes what DistributedDataParallel computes: in 2 gloo
processes, each with half the batch, the gradients it leaves equal DDP's (and those of one process on the whole
batch)."""

from __future__ import annotations

import multiprocessing
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from gpt_reference.config import GPTConfig
from gpt_reference.distributed import average_gradients
from gpt_reference.model import GPT

CONFIG = dict(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_embd=16, dropout=0.0)


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return torch.randint(13, (6, 8), generator=generator), torch.randint(13, (6, 8), generator=generator)


def _model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**CONFIG))


def _grads(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def _process(rank: int, store_path: str, send) -> None:
    try:
        # one thread: a forked child of a process that has used OpenMP's thread pool hangs in its first parallel
        # region (GNU OpenMP is not fork-safe), as autograder/checks/scaling.py's processes know too
        torch.set_num_threads(1)
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        dist.init_process_group("gloo", store=dist.FileStore(store_path, 2), rank=rank, world_size=2,
                                timeout=timedelta(seconds=30))
        x, y = _batch()
        mine = slice(3 * rank, 3 * rank + 3)
        by_hand = _model()
        by_hand(x[mine], y[mine])[1].backward()
        average_gradients(by_hand)
        ddp = DDP(_model())
        ddp(x[mine], y[mine])[1].backward()
        send.send((_grads(by_hand).tolist(), _grads(ddp.module).tolist()))
    except BaseException as e:
        send.send(repr(e))
    finally:
        os._exit(0)


def test_average_gradients_equals_ddp_over_two_gloo_processes(tmp_path):
    context = multiprocessing.get_context("fork")
    receivers, processes = [], []
    for rank in range(2):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_process, args=(rank, str(tmp_path / "store"), send))
        process.start()
        receivers.append(receive)
        processes.append(process)
    results = [receive.recv() if receive.poll(120) else "no answer in 120 s" for receive in receivers]
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    model = _model()
    model(*_batch())[1].backward()
    whole = _grads(model)
    for result in results:
        assert isinstance(result, tuple), result
        by_hand, ddp = (torch.tensor(r) for r in result)
        assert torch.allclose(by_hand, ddp, atol=1e-6, rtol=1e-5)
        assert torch.allclose(by_hand, whole, atol=1e-6, rtol=1e-4)
