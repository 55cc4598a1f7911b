"""The real-kernel guest: build it (guest), boot it against the vhost-user front-end
(run).  See docs/vm.md."""
