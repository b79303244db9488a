"""The ChatML-style chat template the demo model ships with.

It wraps assistant content in {% generation %} markers so that TRL's assistant_only_loss and
`return_assistant_tokens_mask` know which tokens are trained. The closing <|im_end|> is inside
the markers on purpose: the model must learn to stop.

Tools: when `tools` are given they are listed in the system turn, an assistant's `tool_calls`
are written as <tool_call>{"name": ..., "arguments": ...}</tool_call> (inside the generation
markers: calling the tool is what the model learns), and a `tool` turn carries the result.
A conversation without tools renders exactly as before tools were added.
"""

CHAT_TEMPLATE = (
    "{%- if tools -%}"
    "{{- '<|im_start|>system\n' -}}"
    "{%- if messages[0]['role'] == 'system' -%}{{- messages[0]['content'] + '\n\n' -}}{%- endif -%}"
    "{{- 'You can call these tools; to call one, answer with "
    "<tool_call>{\"name\": ..., \"arguments\": ...}</tool_call>.\n' -}}"
    "{%- for tool in tools -%}"
    "{{- (tool.function if tool.function is defined else tool) | tojson -}}{{- '\n' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if tools and loop.first and message['role'] == 'system' -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\n' -}}"
    "{%- generation -%}"
    "{{- message['content'] -}}"
    "{%- for call in message.tool_calls or [] -%}"
    "{%- if not loop.first or message['content'] -%}{{- '\n' -}}{%- endif -%}"
    "{{- '<tool_call>{\"name\": \"' + call.function.name + '\", \"arguments\": ' -}}"
    "{{- call.function.arguments | tojson -}}"
    "{{- '}</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endgeneration -%}"
    "{{- '\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\n' -}}"
    "{%- endif -%}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
