# Supervised fine-tuning on a checkable task: 2-digit addition.
#
# A small character-level GPT-2 is pretrained on arithmetic text (addition
# and subtraction, the loss on every token), then fine-tuned on addition
# instructions twice, side by side: every weight ("full") and a LoRA
# adapter ("lora"). Each model, the base included, is scored by exact match
# on held-out addition problems (the generator keeps test problems out of
# every training set). See README.md.

llmlab { version = 1 }

variable "pretrain_steps" {
  type    = number
  default = 1500
}

# 0: each method's own step count (full 3000, lora 8000); any other value
# sets both, e.g. -var finetune_steps=300 for a quick try.
variable "finetune_steps" {
  type    = number
  default = 0
}

dataset "arith_text" {
  generate "arithmetic" {
    count  = 8000
    seed   = 1
    digits = 2
    ops    = ["+", "-"]
  }
}

dataset "addition" {
  generate "arithmetic" {
    count  = 6000
    seed   = 2
    digits = 2
    ops    = ["+"]
  }
}

dataset "addition_test" {
  generate "arithmetic" {
    count  = 300
    seed   = 3
    digits = 2
    ops    = ["+"]
    split  = "test"
  }
}

stage "data_prep" "text" {
  source   = dataset.arith_text
  format   = "instructions"
  template = "compact"
  tokenizer { kind = "char" }
}

stage "pretrain" "base" {
  data      = stage.text.train
  eval_data = stage.text.validation
  model {
    layers  = 2
    heads   = 4
    dim     = 64
    context = 32
  }
  training {
    steps         = var.pretrain_steps
    batch_size    = 32
    learning_rate = 3e-3
    warmup_steps  = 50
    eval_every    = 200
    seed          = 1
  }
}

stage "data_prep" "sft_data" {
  source   = dataset.addition
  format   = "instructions"
  template = "compact"
  tokenizer { from = stage.text.tokenizer }
  split { validation = 0.05 }
}

stage "finetune" "sft" {
  for_each = {
    full = { lr = 2e-3, steps = 3000 }
    lora = { lr = 1e-2, steps = 8000 }
  }
  base      = stage.base.model
  data      = stage.sft_data.train
  eval_data = stage.sft_data.validation
  method    = each.key
  lora {
    rank    = 16
    alpha   = 32
    targets = ["attn", "attn_proj", "mlp"]
  }
  training {
    steps         = var.finetune_steps > 0 ? var.finetune_steps : each.value.steps
    batch_size    = 32
    learning_rate = each.value.lr
    warmup_steps  = 50
    eval_every    = 1000
    seed          = 1
  }
}

stage "eval" "exact" {
  for_each = toset(["full", "lora"])
  model    = stage.sft[each.key].model
  exact_match {
    data           = dataset.addition_test
    template       = "compact"
    max_new_tokens = 6
  }
}

stage "eval" "exact_base" {
  model = stage.base.model
  exact_match {
    data           = dataset.addition_test
    template       = "compact"
    max_new_tokens = 6
  }
}

output "exact_match" {
  value = merge({ for k, e in stage.exact : k => e.metrics.exact_match }, { base = stage.exact_base.metrics.exact_match })
}
