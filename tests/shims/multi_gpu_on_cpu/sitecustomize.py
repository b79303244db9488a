"""Test-only shim: lets accelerate run FSDP2 and DeepSpeed ZeRO on CPU ranks over gloo, so CI can
exercise the studio's GPU-only strategies end to end.

accelerate enables both only for GPU ranks: its FSDP switch sits in the GPU branch (CPU ranks
settle on DDP), and with no GPU backend it runs DeepSpeed as a single process. torch's FSDP2 and
DeepSpeed's CPU accelerator both work over gloo, so this shim changes only those choices, after
accelerate has picked the CPU device. Everything after that (wrapping, sharded and ZeRO
checkpoints, the gathered final save, resume) is the real code. Python imports `sitecustomize` at
start-up from PYTHONPATH; tests put this folder there only for these runs, and it does nothing
unless `accelerate launch` asked for FSDP or DeepSpeed.
"""

import os

if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
    from accelerate import state as _state

    _orig_init = _state.AcceleratorState.__init__

    def _fsdp_init(self, *args, fsdp_plugin=None, **kwargs):
        _orig_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if self.distributed_type == _state.DistributedType.MULTI_CPU and fsdp_plugin is not None:
            # AcceleratorState copies PartialState's fields on every construction: set both.
            _state.PartialState().distributed_type = _state.DistributedType.FSDP
            self.distributed_type = _state.DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin

    _state.AcceleratorState.__init__ = _fsdp_init

if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import transformers
    from accelerate import state as _state

    _orig_backend = _state.PartialState._prepare_backend

    def _ds_backend(self, cpu=False, sagemaker_dp=False, backend=None):
        # No GPU backend means "no distributed" to accelerate; give DeepSpeed gloo CPU ranks.
        chosen, kind = _orig_backend(self, cpu, sagemaker_dp, backend)
        if kind == _state.DistributedType.NO and int(os.environ.get("LOCAL_RANK", -1)) != -1:
            return "gloo", _state.DistributedType.MULTI_CPU
        return chosen, kind

    _state.PartialState._prepare_backend = _ds_backend

    _orig_post_init = transformers.TrainingArguments.__post_init__

    def _ds_post_init(self):
        self.use_cpu = False  # transformers skips DeepSpeed for use_cpu; the device is still the CPU
        _orig_post_init(self)

    transformers.TrainingArguments.__post_init__ = _ds_post_init
