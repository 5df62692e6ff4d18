"""Chat templates used by the formatting tests.

`GEMMA3_TEMPLATE` restates the published Gemma 3 instruction template (system text prefixed to the first user
turn, strict user/model alternation); the gemma3-270m GGUF is a base model and ships none.
Lines are long because Jinja whitespace control makes breaking them change the rendered prompt.
`STRICT_TEMPLATE` behaves like Gemma 2's: it raises on a system role and on two turns of the same role.
"""

# ruff: noqa: E501

GEMMA3_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set first_user_prefix = '' -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
{%- endif -%}
{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}{{ message['content'] | trim }}{{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"""

STRICT_TEMPLATE = """{%- for message in messages -%}
{%- if message['role'] == 'system' -%}{{ raise_exception('System role not supported') }}{%- endif -%}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
{%- endif -%}
{{ '<turn>' + message['role'] + '\n' + message['content'] + '</turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<turn>assistant\n' }}{%- endif -%}"""
