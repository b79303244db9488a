"""Token streaming for batched generation: a streamer that turns each step's [batch] tensor into
text per row, the stop criterion that a cancel event trips, and end-of-sequence handling.

Split from studio.chat, which owns what answers (sides) and runs generate with these. Every
helper imports torch/transformers lazily, so importing studio stays light.
"""

from __future__ import annotations

import queue
import threading

from studio.model_cache import LoadedModel


def stop_criteria(event: threading.Event | None):
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Cancelled(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), bool(event and event.is_set()), dtype=torch.bool,
                              device=input_ids.device)

    return StoppingCriteriaList([_Cancelled()])


def eos_ids(entry: LoadedModel) -> set[int]:
    ids = getattr(getattr(entry.model, "generation_config", None), "eos_token_id", None)
    ids = set(ids if isinstance(ids, (list, tuple)) else [ids] if ids is not None else [])
    if entry.tokenizer.eos_token_id is not None:
        ids.add(entry.tokenizer.eos_token_id)
    return ids


def make_streamer(tok, rows: list[int], eos: set[int], q: queue.Queue):
    """A streamer for a batch: put() gets one [batch] tensor per step; text goes out per row."""
    from transformers.generation.streamers import BaseStreamer

    class RowStreamer(BaseStreamer):
        def __init__(self):
            self.ids = [[] for _ in rows]
            self.sent = ["" for _ in rows]
            self.done = [False for _ in rows]
            self.prompt_seen = False

        def put(self, value):
            if not self.prompt_seen and value.dim() > 1:  # the first call carries the prompt ids
                self.prompt_seen = True
                return
            for i, t in enumerate(value.reshape(-1).tolist()):
                if self.done[i]:
                    continue  # after its end a row only gets padding
                if t in eos:
                    self.done[i] = True
                    continue
                self.ids[i].append(t)
                self._emit(i, final=False)

        def _emit(self, i: int, final: bool):
            text = tok.decode(self.ids[i], skip_special_tokens=True)
            if not final and text.endswith("\ufffd"):
                return  # half a multi-byte character: wait for the next token
            if text.startswith(self.sent[i]):
                if len(text) > len(self.sent[i]):
                    q.put(("delta", rows[i], text[len(self.sent[i]):]))
            else:  # decoding a longer prefix changed earlier text: resend the row
                q.put(("set", rows[i], text))
            self.sent[i] = text

        def end(self):
            for i in range(len(rows)):
                self._emit(i, final=True)

    return RowStreamer()


def new_ids(out, prompt_len: int, eos: set[int]) -> list[list[int]]:
    """The generated ids of each row, up to (not including) its first end-of-sequence token."""
    rows = []
    for row in out[:, prompt_len:].tolist():
        rows.append(row[:next((j for j, t in enumerate(row) if t in eos), len(row))])
    return rows
