// Package images holds the build contexts of pgha's images, embedded in the
// binary so that an installed pgha builds them anywhere.
package images

import "embed"

// Contexts holds one directory per image: etcd/, patroni/, objectstore/, guard/, router/, dind/, netfault/.
//
//go:embed etcd patroni objectstore guard router dind netfault
var Contexts embed.FS
