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
// Every write is write-once and atomic: a temp file in store/tmp (or a
// stage's output in its work directory) is written, fsynced and closed, then
// renamed into place, so a process killed at any moment leaves either no
// object or a complete one. Directory fsyncs, which make the renames
// durable against an OS crash, are grouped: PutAction fsyncs the
// directories of the objects an entry names before writing the entry, and
// Sync fsyncs the rest (the entries' directories) once, at the end of an
// apply. So an entry never survives a crash that its objects do not; a
// crash before Sync may lose recent entries, and their stages run again.
// The 256 fan-out directories are created when the store is.
// Every read re-hashes the content; an object whose content does not match
// its name is never served: the read fails with a *CorruptError naming it.
package store
