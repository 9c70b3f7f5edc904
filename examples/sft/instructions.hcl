# The same flow on real instructions: rasbt/LLMs-from-scratch's 1,100
# Apache-2.0 instruction records (examples/data). A byte-level BPE
# tokenizer is learned from the instructions, a small GPT-2 is pretrained
# on tinyshakespeare with it, and then fine-tuned on the instructions, full
# and LoRA side by side. A model this small trained for minutes on a CPU
# does not answer open questions correctly: expect exact match near 0 and
# read the samples and the validation loss instead. See README.md.

llmlab { version = 1 }

variable "pretrain_steps" {
  type    = number
  default = 1000
}

variable "finetune_steps" {
  type    = number
  default = 500
}

dataset "shakespeare" { path = "../data/tinyshakespeare.txt" }
dataset "instructions" { path = "../data/sft_llms_from_scratch_instruction_data.json" }

stage "data_prep" "instr" {
  source   = dataset.instructions
  format   = "instructions"
  template = "compact"
  tokenizer {
    kind       = "byte_bpe"
    vocab_size = 512
  }
  split { validation = 0.1 }
  max_length {
    tokens = 128
    policy = "drop"
  }
}

stage "data_prep" "text" {
  source = dataset.shakespeare
  tokenizer { from = stage.instr.tokenizer }
}

stage "pretrain" "base" {
  data      = stage.text.train
  eval_data = stage.text.validation
  model {
    layers  = 4
    heads   = 4
    dim     = 128
    context = 128
  }
  training {
    steps        = var.pretrain_steps
    batch_size   = 8
    warmup_steps = 50
    eval_every   = 250
  }
}

stage "finetune" "sft" {
  for_each  = toset(["full", "lora"])
  base      = stage.base.model
  data      = stage.instr.train
  eval_data = stage.instr.validation
  method    = each.key
  lora {
    rank    = 8
    alpha   = 16
    targets = ["attn", "mlp"]
  }
  training {
    steps         = var.finetune_steps
    batch_size    = 8
    learning_rate = each.key == "full" ? 3e-4 : 2e-3
    warmup_steps  = 20
    eval_every    = 100
  }
}

stage "eval" "sft_eval" {
  for_each = toset(["full", "lora"])
  model    = stage.sft[each.key].model
  exact_match {
    data           = stage.instr.validation
    template       = "compact"
    max_new_tokens = 40
  }
  generate {
    prompts        = ["Q: What is the capital of France?\nA: ", "Q: Rewrite the sentence in passive voice. The chef cooked the meal.\nA: "]
    max_new_tokens = 40
    temperature    = 0
  }
}

output "val_loss" { value = { for k in ["full", "lora"] : k => stage.sft[k].metrics.val_loss } }
output "exact_match" { value = { for k in ["full", "lora"] : k => stage.sft_eval[k].metrics.exact_match } }
