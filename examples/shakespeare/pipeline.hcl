# nanoGPT's shakespeare_char, on the CPU: a character-level GPT-2 trained on
# tinyshakespeare, then scored and sampled. See README.md.

llmlab { version = 1 }

variable "steps" {
  type        = number
  default     = 2000
  description = "optimiser steps (nanoGPT's CPU run: 2000)"
}

dataset "shakespeare" { path = "data/tinyshakespeare.txt" }

stage "data_prep" "chars" {
  source = dataset.shakespeare
  tokenizer { kind = "char" }
  split { validation = 0.1 }
}

stage "pretrain" "base" {
  data      = stage.chars.train
  eval_data = stage.chars.validation
  model {
    layers  = 4
    heads   = 4
    dim     = 128
    context = 64
  }
  training {
    steps         = var.steps
    batch_size    = 12
    learning_rate = 1e-3
    min_lr        = 1e-4
    warmup_steps  = 100
    eval_every    = 250
    eval_batches  = 20
    seed          = 1337
  }
  resources {
    cpus = 2
  }
}

stage "eval" "base_eval" {
  model = stage.base.model
  perplexity {
    data = stage.chars.validation
  }
  generate {
    prompts        = ["ROMEO:", "\n"]
    max_new_tokens = 300
    temperature    = 0.8
    top_k          = 200
    seed           = 1
  }
}

output "val_loss" { value = stage.base.metrics.val_loss }
output "perplexity" { value = stage.base_eval.metrics.perplexity }
