/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A VIP's backend by id: from the connection table or the VIP's Maglev ring. */
#ifndef XLB_BALANCER_BACKEND_H
#define XLB_BALANCER_BACKEND_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xlb.h"
#include "balancer/maps.h"

static __always_inline struct xlb_backend *backend_of_vip(__u32 id, const struct xlb_vip *vip)
{
	struct xlb_backend *backend = bpf_map_lookup_elem(&xlb_backends_v3, &id);

	if (!backend || !backend->family || backend->vip_id != vip->id)
		return NULL;
	return backend;
}

/* A connection-table entry still holds while its backend serves the VIP and is not
 * marked unhealthy: flows to a failed backend are broken anyway, and re-hashing
 * them lets a client that reuses the 5-tuple reach a live backend. */
static __always_inline struct xlb_backend *flow_backend(__u32 id, const struct xlb_vip *vip)
{
	struct xlb_backend *backend = backend_of_vip(id, vip);

	if (backend && (backend->flags & XLB_BACKEND_F_UNHEALTHY))
		return NULL;
	return backend;
}

static __always_inline struct xlb_backend *ring_backend(const struct xlb_vip *vip, __u32 hash,
							const struct xlb_config *config, __u32 *id)
{
	void *ring = bpf_map_lookup_elem(&xlb_rings_v3, &vip->id);
	__u32 slot = hash % config->ring_size;
	__u32 element = slot / XLB_RING_IDS_PER_VALUE;
	__u32 *ids;

	if (!ring)
		return NULL;
	ids = bpf_map_lookup_elem(ring, &element);
	if (!ids)
		return NULL;
	*id = ids[slot % XLB_RING_IDS_PER_VALUE];
	return backend_of_vip(*id, vip);
}

#endif /* XLB_BALANCER_BACKEND_H */
