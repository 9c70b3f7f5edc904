# Generates gpt2_splits.json: the pieces GPT-2's pre-tokenization pattern
# (openai/gpt-2 src/encoder.py) cuts each input into, using the Python
# `regex` module exactly as GPT-2 does. Run: python3 gen_gpt2_splits.py
import json, regex
pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
inputs = [
    "Hello world",
    "Hello, world! How's it going?",
    "I'm here, you're there, we've been, they'll go, he'd say, it's",
    "DON'T SHOUT'S",
    "  leading spaces",
    "a  b   c",
    "trailing  ",
    "trailing ",
    "a\n\nb",
    "x \n y",
    "line one\nline two\n\n",
    "tab\tsep\t\tx",
    "'''s ''",
    "3.14 and 1,000,000 and x2y",
    "é ß 日本語 Ünïcödé",
    "\u00a0nbsp\u00a0 x",
    "x\u3000y\u2028z",
    "hello!!! world?? ...",
    "'ll've'd'm't",
    "a'",
    "'",
    " ",
    "\n",
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n",
    "emoji 🙂🙂 x",
    "½ Ⅻ ٣",
    "x  \t y",
    "$100 (net)",
]
out = [{"text": s, "pieces": pat.findall(s)} for s in inputs]
with open("gpt2_splits.json", "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write("\n")
