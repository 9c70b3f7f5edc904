# Word and character statistics of the tinyshakespeare corpus, computed with
# standard Unix tools in `exec` stages. Try:
#   llmlab plan examples/wordstats/pipeline.hcl
#   llmlab apply examples/wordstats/pipeline.hcl
#   llmlab apply examples/wordstats/pipeline.hcl -var top=20   # only the top lists rerun
llmlab { version = 1 }

variable "top" {
  type        = number
  default     = 10
  description = "how many of the most frequent words and characters to keep"
  validation {
    condition     = var.top >= 1 && var.top <= 1000
    error_message = "top must be between 1 and 1000."
  }
}

dataset "corpus" { path = "../data/tinyshakespeare.txt" }

# One lower-case word per line.
stage "exec" "words" {
  command = ["sh", "-c", "tr -cs 'A-Za-z' '\\n' < inputs/text | tr 'A-Z' 'a-z' | grep -v '^$' > words.txt"]
  inputs  = { text = dataset.corpus }
  outputs = { words = "words.txt" }
}

# Frequency of every word, most frequent first, and two metrics.
stage "exec" "word_counts" {
  command = ["sh", "-c", join(" && ", [
    "LC_ALL=C sort inputs/words | uniq -c | sort -k1,1nr -k2,2 > counts.txt",
    "printf '{\"total_words\": %d, \"distinct_words\": %d}\\n' $(wc -l < inputs/words) $(wc -l < counts.txt) > metrics.json",
  ])]
  inputs  = { words = stage.words.words }
  outputs = { counts = "counts.txt" }
  metrics = "metrics.json"
}

# Frequency of every character (letters, punctuation, spaces as "<sp>").
stage "exec" "char_counts" {
  command = ["sh", "-c", join(" && ", [
    "fold -w1 inputs/text | sed 's/^ $/<sp>/; /^$/d' | LC_ALL=C sort | uniq -c | sort -k1,1nr -k2,2 > chars.txt",
    "printf '{\"distinct_chars\": %d, \"total_chars\": %d}\\n' $(wc -l < chars.txt) $(wc -c < inputs/text) > metrics.json",
  ])]
  inputs  = { text = dataset.corpus }
  outputs = { counts = "chars.txt" }
  metrics = "metrics.json"
}

# The top lists, one per table.
stage "exec" "top" {
  for_each = {
    words = stage.word_counts.counts
    chars = stage.char_counts.counts
  }
  command = ["sh", "-c", format("head -n %d inputs/counts > top.txt", var.top)]
  inputs  = { counts = each.value }
  outputs = { top = "top.txt" }
}

output "total_words" { value = stage.word_counts.metrics.total_words }
output "distinct_words" { value = stage.word_counts.metrics.distinct_words }
output "distinct_chars" { value = stage.char_counts.metrics.distinct_chars }
