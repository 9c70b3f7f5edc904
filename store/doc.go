// Package store owns llmlab's content-addressed store under a `.llmlab`
// directory: SHA-256 addressed blobs, directory trees (a deterministic
// manifest of relative paths, normalised modes and digests), the action cache
// (cache key -> output digests, metrics, log digest, timings), the stat-keyed
// digest cache for user inputs, the store lock, and the maintenance
// operations behind `llmlab store verify|gc|du|ls`.
//
// Layout under the root passed to Open:
//
//	store/objects/<2hex>/<64hex>   blobs and tree manifests, mode 0444
//	store/actions/<2hex>/<64hex>   action entries, mode 0444
//	store/tmp/                     temp files (tmp-*) and work dirs (work-*)
//	store/statcache.json           stat-keyed digest cache for inputs
//	lock                           flock(2) lock file holding the owner as JSON
//
// Every write is write-once and atomic: a temp file in store/tmp is written,
// fsynced and closed, then renamed into place and the directory fsynced, so a
// process killed at any moment leaves either no object or a complete one.
// Every read re-hashes the content; an object whose content does not match
// its name is never served: the read fails with a *CorruptError naming it.
package store
