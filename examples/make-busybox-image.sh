#!/bin/sh
# Builds a tiny OCI image layout from Debian's busybox-static, offline, for
# examples/container.toml: busybox and its applets, a nobody user, and a web page.
#   apt-get install busybox-static umoci runc     (tools/dev installs them)
#   examples/make-busybox-image.sh [/var/tmp/meshos-busybox]   # then tag "latest"
set -eu
layout="${1:-/var/tmp/meshos-busybox}"
busybox="$(command -v busybox)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
[ -e "$layout/index.json" ] || umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --image "$layout:latest" "$work/bundle" >/dev/null
root="$work/bundle/rootfs"
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www"
cp "$busybox" "$root/bin/busybox"
for applet in sh sleep cat echo id ls grep wget httpd; do ln -sf busybox "$root/bin/$applet"; done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$root/etc/passwd"
echo '<h1>hello from a meshos container</h1>' > "$root/www/index.html"
umoci repack --image "$layout:latest" "$work/bundle"
echo "$layout:latest"
