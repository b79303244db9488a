"""Ollama Modelfile for a GGUF export: FROM, a Go TEMPLATE derived from the chat template, stops.

The template is derived, not looked up: the tokenizer's own Jinja chat template is rendered with
marker strings as message contents, which yields the exact text that wraps each role's content
(prefix, suffix) and the generation prompt. The wrappers are checked by re-rendering a whole
conversation; only if that check fails does a generic template stand in (and the Modelfile says
so). A system prompt the template adds on its own becomes the Modelfile's SYSTEM line. It does
not write GGUF files (studio.export_gguf does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "user", "assistant")
_MARK = {"system": "\u2063SYS\u2063", "user": "\u2063USR1\u2063", "assistant": "\u2063AST1\u2063"}
_USER2, _ASSISTANT2 = "\u2063USR2\u2063", "\u2063AST2\u2063"


@dataclass
class Wrappers:
    """The literal text around each role's content, and what starts the model's reply."""
    prefix: dict[str, str] = field(default_factory=dict)
    suffix: dict[str, str] = field(default_factory=dict)
    generation_prompt: str = ""
    derived: bool = True  # False: the generic fallback
    default_system: str = ""  # the system prompt the template adds when a chat has none

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """Python twin of the Go template, used to check the derivation."""
        out = "".join(self.prefix[m["role"]] + m["content"] + self.suffix[m["role"]] for m in messages)
        return out + (self.generation_prompt if add_generation_prompt else "")


def _render(tok: Any, msgs: list[dict[str, str]], gen: bool = False) -> str:
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    bos = getattr(tok, "bos_token", None)
    # The runtime adds BOS itself (tokenizer.ggml.add_bos_token), so the template must not.
    return text[len(bos):] if bos and text.startswith(bos) else text


def derive_wrappers(tok: Any) -> Wrappers:
    """Role wrappers from the tokenizer's chat template, or the generic fallback."""
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]
    for with_system in (True, False):
        try:
            w = _derive(tok, with_system)
            msgs = conv if with_system else conv[1:]
            if w.render(msgs) != _render(tok, msgs, gen=True):
                continue
            if with_system and w.render(_with_default(w, conv[1:])) != _render(tok, conv[1:], gen=True):
                continue
            return w
        except Exception:  # noqa: BLE001 - any template error means "not derivable this way"
            continue
    return generic_wrappers()


def _with_default(w: Wrappers, msgs: list[dict[str, str]]) -> list[dict[str, str]]:
    return ([{"role": "system", "content": w.default_system}] if w.default_system else []) + msgs


def _between(text: str, a: str, b: str) -> str:
    return text.split(a, 1)[1].split(b, 1)[0]


def _derive(tok: Any, with_system: bool) -> Wrappers:
    s, u, a, u2, a2 = _MARK["system"], _MARK["user"], _MARK["assistant"], _USER2, _ASSISTANT2
    head = [{"role": "system", "content": s}] if with_system else []
    first = head + [{"role": "user", "content": u}]
    one = _render(tok, first)
    suf_u = one.split(u, 1)[1]
    gen = _render(tok, first, gen=True)
    if not gen.startswith(one):
        raise ValueError("generation prompt is not a suffix")
    full = _render(tok, first + [{"role": "assistant", "content": a}, {"role": "user", "content": u2},
                                 {"role": "assistant", "content": a2}])
    suf_a = full.split(a2, 1)[1]
    b_ua, b_au = _between(full, u, a), _between(full, a, u2)
    if not (b_ua.startswith(suf_u) and b_au.startswith(suf_a) and _between(full, u2, a2) == b_ua):
        raise ValueError("wrappers are not consistent across turns")
    w = Wrappers(prefix={"user": b_au[len(suf_a):], "assistant": b_ua[len(suf_u):]},
                 suffix={"user": suf_u, "assistant": suf_a}, generation_prompt=gen[len(one):])
    if not with_system:
        return w
    b_su = _between(full, s, u)
    if not b_su.endswith(w.prefix["user"]):
        raise ValueError("system wrapper is not consistent")
    w.prefix["system"] = full.split(s, 1)[0]
    w.suffix["system"] = b_su[:len(b_su) - len(w.prefix["user"])]
    # Some templates add a system message of their own when there is none (e.g. "You are ...").
    bare = _render(tok, [{"role": "user", "content": u}])
    tail = w.suffix["system"] + w.prefix["user"] + u
    if bare.startswith(w.prefix["system"]) and tail in bare and not bare.startswith(w.prefix["user"] + u):
        w.default_system = bare[len(w.prefix["system"]):bare.index(tail)]
    return w


def generic_wrappers() -> Wrappers:
    return Wrappers(prefix={"system": "", "user": "User: ", "assistant": "Assistant: "},
                    suffix={"system": "\n\n", "user": "\n", "assistant": "\n"},
                    generation_prompt="Assistant: ", derived=False)


def _go_literal(text: str) -> str:
    """Go templates have no escape for '{{' in text, but can print it as a string action."""
    return text.replace("{{", "\x00").replace("}}", '{{ "}}" }}').replace("\x00", '{{ "{{" }}')


def go_template(w: Wrappers) -> str:
    """The Ollama TEMPLATE: one branch per role over .Messages, then the generation prompt."""
    parts = ["{{- range .Messages }}"]
    for i, role in enumerate(r for r in ROLES if r in w.prefix):
        parts.append(f'{{{{ {"if" if i == 0 else "else if"} eq .Role "{role}" }}}}'
                     f"{_go_literal(w.prefix[role])}{{{{ .Content }}}}{_go_literal(w.suffix[role])}")
    parts.append("{{ end }}{{ end }}" + _go_literal(w.generation_prompt))
    return "".join(parts)


def stop_tokens(tok: Any, w: Wrappers) -> list[str]:
    """Strings that end the reply: EOS plus any special token that closes or opens a turn."""
    stops: list[str] = []
    special = [t for t in getattr(tok, "all_special_tokens", []) if t]
    special += [t.content for t in tok.added_tokens_decoder.values() if t.special]
    turn_text = w.suffix.get("assistant", "") + w.prefix.get("user", "")
    for t in [tok.eos_token] + sorted(set(special)):
        if t and (t == tok.eos_token or t in turn_text) and t not in stops:
            stops.append(t)
    if not w.derived:
        stops.append("User:")
    return stops


def modelfile(tok: Any, model_config: Any, generation_config: Any = None, name: str = "model",
              gguf_file: str = "model.gguf") -> str:
    """Complete Modelfile text."""
    w = derive_wrappers(tok)
    template = go_template(w)
    if '"""' in template:
        raise ValueError("chat template contains triple quotes")
    gc = generation_config
    temperature = getattr(gc, "temperature", None) if gc is not None and getattr(gc, "do_sample", False) else None
    top_p = getattr(gc, "top_p", None) if gc is not None and getattr(gc, "do_sample", False) else None
    ctx = min(int(getattr(model_config, "max_position_embeddings", 4096) or 4096), 8192)  # tokens
    lines = [f"# Ollama Modelfile for {name}, written by Fine-Tune Studio.",
             f"# Create and run:  ollama create {name} -f Modelfile  &&  ollama run {name}"]
    if not w.derived:
        lines.append("# NOTE: the chat template could not be translated; a generic User:/Assistant: "
                     "template is used. Edit TEMPLATE to match the training format.")
    lines += [f"FROM ./{gguf_file}", "", f'TEMPLATE """{template}"""', ""]
    if w.default_system and '"""' not in w.default_system:
        lines += [f'SYSTEM """{w.default_system}"""', ""]
    lines += [f'PARAMETER stop "{s}"' for s in stop_tokens(tok, w)]
    lines += [f"PARAMETER temperature {temperature if temperature is not None else 0.7:g}",
              f"PARAMETER top_p {top_p if top_p is not None else 0.9:g}",
              f"PARAMETER num_ctx {ctx}", ""]
    return "\n".join(lines)
