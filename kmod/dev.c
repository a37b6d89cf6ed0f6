// SPDX-License-Identifier: GPL-2.0
/*
 * nbdws: device life cycle.
 *
 * A device is created by CONNECT: every step that can fail (the device,
 * its connections' sockets claimed, the disk added) before any connection
 * starts. It is removed by DISCONNECT or module unload. Indexes come
 * from an IDR (the lowest free one, or the one CONNECT asked for); a kept
 * device can be connected to a new export at its index again.
 *
 * Locking: nbdws_idr_lock guards the IDR only and is never held for long.
 * Each device has its own mutex, taken by every configuration command on
 * it, and a reference count that keeps its memory while a command waits
 * for that mutex; a device removed meanwhile is marked gone. No command
 * waits for a server under either lock: the disk is added without a
 * partition scan, DISCONNECT shuts the sockets down before it removes the
 * disk, and the one queue freeze that may meet requests in flight is
 * bounded.
 */
#include <linux/backing-dev.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/idr.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

#include "compat.h"
#include "nbdws.h"

static DEFINE_IDR(nbdws_idr);
static DEFINE_MUTEX(nbdws_idr_lock);
static bool nbdws_unloading;		/* under nbdws_idr_lock */

/* Requests carry at most this much in one NBD command (32-bit length). */
#define NBDWS_MAX_CMD_SECTORS(bs) (round_down(UINT_MAX, (bs)) >> SECTOR_SHIFT)

/* A timeout nobody waits for: the handler just re-arms the timer. */
#define NBDWS_NO_TIMEOUT_JIFFIES (3600UL * HZ)

/*
 * How long RECONFIGURE waits for the I/O in flight to drain before it
 * gives new connections hardware queues of their own (as nvme-tcp bounds
 * its freeze): a server that stopped answering must not hold it.
 */
#define NBDWS_FREEZE_JIFFIES	(3 * HZ)

static const struct block_device_operations nbdws_fops = {
	.owner = THIS_MODULE,
};

static struct nbdws_dev *nbdws_disk_dev(struct device *d)
{
	return dev_to_disk(d)->private_data;
}

static ssize_t backend_show(struct device *d, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%s\n", nbdws_disk_dev(d)->backend);
}
static DEVICE_ATTR_RO(backend);

static ssize_t connections_show(struct device *d,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(nbdws_disk_dev(d)->nr_conns));
}
static DEVICE_ATTR_RO(connections);

static ssize_t connections_alive_show(struct device *d,
				      struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&nbdws_disk_dev(d)->live));
}
static DEVICE_ATTR_RO(connections_alive);

static struct attribute *nbdws_disk_attrs[] = {
	&dev_attr_backend.attr,
	&dev_attr_connections.attr,
	&dev_attr_connections_alive.attr,
	NULL,
};

static const struct attribute_group nbdws_disk_group = {
	.name = "nbdws",
	.attrs = nbdws_disk_attrs,
};

static const struct attribute_group *nbdws_disk_groups[] = {
	&nbdws_disk_group,
	NULL,
};

/* The queue limits of the export @cfg describes. */
static void nbdws_fill_limits(const struct nbdws_dev_config *cfg,
			      struct nbdws_limits *l)
{
	u32 sf = cfg->server_flags;

	/* A read-only device offers nothing that writes (see map_op). */
	if (cfg->client_flags & NBDWS_CF_READ_ONLY || sf & NBDP_FLAG_READ_ONLY)
		sf &= ~(NBDP_FLAG_SEND_TRIM | NBDP_FLAG_SEND_WRITE_ZEROES);

	memset(l, 0, sizeof(*l));
	l->logical_block_size = cfg->block_size;
	l->physical_block_size = max(cfg->block_pref, cfg->block_size);
	l->io_opt = l->physical_block_size;
	l->max_hw_sectors = cfg->max_req >> SECTOR_SHIFT;
	l->max_segments = USHRT_MAX;
	if (sf & NBDP_FLAG_SEND_TRIM)
		l->max_discard_sectors = NBDWS_MAX_CMD_SECTORS(cfg->block_size);
	if (sf & NBDP_FLAG_SEND_WRITE_ZEROES)
		l->max_write_zeroes_sectors =
			NBDWS_MAX_CMD_SECTORS(cfg->block_size);
	l->write_cache = sf & NBDP_FLAG_SEND_FLUSH;
	l->fua = sf & NBDP_FLAG_SEND_FUA;
	l->rotational = sf & NBDP_FLAG_ROTATIONAL;
}

/*
 * Readahead decides how much a buffered sequential reader has in flight:
 * about two windows (the one being read and the one started when its
 * marker page is reached). The block layer derives the window from
 * io_opt (twice it, at least 128 KiB), which suits a disk next to the
 * CPU; on a network block device one round trip costs what a disk's
 * seek does, so a window of 128 KiB over 25 ms moves 5 MiB/s whatever
 * the link. The window here is NBDWS_RA_REQS requests of the largest
 * size, so that two windows fill the 8 MiB TCP window a connection gets
 * by default (see nbdws_sock_size_rcvbuf()). io_opt stays the server's
 * preferred block size: mkfs.ext4 and mkfs.xfs read it as the stripe
 * width, and this export has no stripes. Only ever raised above what the
 * block layer chose; read_ahead_kb in sysfs still overrides it.
 */
#define NBDWS_RA_REQS	4U
#define NBDWS_RA_MAX	(8U << 20)

static void nbdws_dev_set_readahead(struct nbdws_dev *dev)
{
	struct backing_dev_info *bdi = dev->disk->bdi;
	unsigned long pages;

	pages = min(min(dev->depth, NBDWS_RA_REQS) * dev->max_req,
		    NBDWS_RA_MAX) >> PAGE_SHIFT;
	if (pages > bdi->ra_pages)
		bdi->ra_pages = pages;
}

static void nbdws_dev_free(struct nbdws_dev *dev)
{
	unsigned int i;

	for (i = 0; i < NBDWS_MAX_CONNS; i++)
		nbdws_conn_free(dev->conns[i]);
	kvfree(dev->tag_gen);
	kfree(dev);
}

static void nbdws_dev_release(struct kref *ref)
{
	nbdws_dev_free(container_of(ref, struct nbdws_dev, ref));
}

void nbdws_dev_put(struct nbdws_dev *dev)
{
	kref_put(&dev->ref, nbdws_dev_release);
}

void nbdws_dev_set_timeout(struct nbdws_dev *dev, u32 timeout_ms)
{
	WRITE_ONCE(dev->timeout_ms, timeout_ms);
	blk_queue_rq_timeout(dev->disk->queue, timeout_ms ?
			     msecs_to_jiffies(timeout_ms) :
			     NBDWS_NO_TIMEOUT_JIFFIES);
}

/* What describes the export; depth and connection count size the tag set. */
static void nbdws_dev_set_config(struct nbdws_dev *dev,
				 const struct nbdws_dev_config *cfg)
{
	dev->size = cfg->size;
	dev->block_size = cfg->block_size;
	dev->block_pref = cfg->block_pref;
	dev->block_max = cfg->block_max;
	dev->max_req = cfg->max_req;
	dev->server_flags = cfg->server_flags;
	dev->client_flags = cfg->client_flags;
	dev->timeout_ms = cfg->timeout_ms;
	WRITE_ONCE(dev->dead_timeout_ms, cfg->dead_timeout_ms);
	strscpy(dev->backend, cfg->backend ? cfg->backend : "",
		sizeof(dev->backend));
}

static void nbdws_dev_set_ro(struct nbdws_dev *dev)
{
	set_disk_ro(dev->disk, dev->client_flags & NBDWS_CF_READ_ONLY ||
		    dev->server_flags & NBDP_FLAG_READ_ONLY);
}

/*
 * Allocate a device and its disk at @index (any free index if negative);
 * connections are attached by the caller. The device is returned locked,
 * with a reference for the caller besides the one of the IDR.
 */
struct nbdws_dev *nbdws_dev_create(const struct nbdws_dev_config *cfg,
				   int index)
{
	struct blk_mq_tag_set *set;
	struct nbdws_limits lim;
	struct nbdws_dev *dev;
	struct gendisk *disk;
	unsigned int i;
	int ret = -ENOMEM;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return ERR_PTR(-ENOMEM);
	dev->index = -1;
	mutex_init(&dev->lock);
	kref_init(&dev->ref);
	nbdws_dev_set_config(dev, cfg);
	dev->depth = cfg->depth;
	dev->nr_conns = cfg->nr_conns;
	spin_lock_init(&dev->held_lock);
	init_rwsem(&dev->tags_rwsem);
	INIT_LIST_HEAD(&dev->held);
	INIT_DELAYED_WORK(&dev->dead_timeout_work, nbdws_dead_timeout_work);
	dev->state = NBDWS_DEV_RUNNING;

	dev->tag_gen = kvcalloc(NBDWS_MAX_CONNS * dev->depth,
				sizeof(*dev->tag_gen), GFP_KERNEL);
	if (!dev->tag_gen)
		goto err_free;
	for (i = 0; i < dev->nr_conns; i++) {
		dev->conns[i] = nbdws_conn_alloc(dev, i);
		if (!dev->conns[i])
			goto err_free;
	}

	set = &dev->tag_set;
	set->ops = &nbdws_mq_ops;
	set->nr_hw_queues = dev->nr_conns;
	set->queue_depth = dev->depth;
	set->numa_node = NUMA_NO_NODE;
	set->cmd_size = sizeof(struct nbdws_req);
	set->flags = NBDWS_MQ_F_MERGE | BLK_MQ_F_BLOCKING;
	/*
	 * Requests are sorted and merged where they are served: by the NBD
	 * server and the storage behind it. A client-side elevator only adds
	 * a lock and a dispatch pass per request (in the bench VM it doubled
	 * the context switches per I/O), and the block layer would attach
	 * one to a single-connection device but not to a multi-connection
	 * one. So no elevator by default, unless the server reports
	 * rotational media, where the block layer's choice stands. sysfs can
	 * change it.
	 */
	if (!(dev->server_flags & NBDP_FLAG_ROTATIONAL))
		set->flags |= BLK_MQ_F_NO_SCHED_BY_DEFAULT;
	set->timeout = dev->timeout_ms ? msecs_to_jiffies(dev->timeout_ms) :
		       NBDWS_NO_TIMEOUT_JIFFIES;
	ret = blk_mq_alloc_tag_set(set);
	if (ret)
		goto err_free;

	nbdws_fill_limits(cfg, &lim);
	disk = nbdws_alloc_disk(set, &lim, dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto err_tags;
	}
	dev->disk = disk;
	disk->fops = &nbdws_fops;
	disk->private_data = dev;
	nbdws_dev_set_ro(dev);

	/* Published last, locked: other commands wait for its CONNECT. */
	mutex_lock(&dev->lock);
	mutex_lock(&nbdws_idr_lock);
	ret = -ENODEV;
	if (!nbdws_unloading) {
		if (index >= 0)
			ret = idr_alloc(&nbdws_idr, dev, index, index + 1,
					GFP_KERNEL);
		else
			ret = idr_alloc(&nbdws_idr, dev, 0, 0, GFP_KERNEL);
	}
	if (ret >= 0)
		kref_get(&dev->ref);
	mutex_unlock(&nbdws_idr_lock);
	if (ret < 0) {
		mutex_unlock(&dev->lock);
		put_disk(disk);
		goto err_tags;
	}
	dev->index = ret;
	snprintf(disk->disk_name, DISK_NAME_LEN, NBDWS_DISK_NAME "%d",
		 dev->index);
	return dev;

err_tags:
	blk_mq_free_tag_set(set);
err_free:
	nbdws_dev_free(dev);
	return ERR_PTR(ret);
}

/*
 * Add the disk, empty: device_add_disk() does not scan it for partitions
 * and wait for the server under the caller's locks, and nothing can read
 * it before nbdws_dev_start(). The last step of CONNECT that can fail, so
 * that it runs before any connection starts: a CONNECT refused here has
 * left every socket as it came and sent no event.
 */
int nbdws_dev_add(struct nbdws_dev *dev)
{
	int ret;

	set_capacity(dev->disk, 0);
	ret = device_add_disk(NULL, dev->disk, nbdws_disk_groups);
	if (ret)
		return ret;
	dev->disk_added = true;
	/* After device_add_disk(), which sets the block layer's default. */
	nbdws_dev_set_readahead(dev);
	nbdws_debugfs_add(dev);
	return 0;
}

/*
 * The connections are started: show the size. The first opener scans the
 * partitions (udev does on the change event), as with nbd.ko.
 */
void nbdws_dev_start(struct nbdws_dev *dev)
{
	set_capacity(dev->disk, dev->size >> SECTOR_SHIFT);
	set_bit(GD_NEED_PART_SCAN, &dev->disk->state);
	kobject_uevent(&disk_to_dev(dev->disk)->kobj, KOBJ_CHANGE);
}

/*
 * Stop serving I/O, promptly whatever the server does: as nbd.ko does,
 * the connections are ended first (NBD_CMD_DISC, a close frame on
 * WebSocket, shutdown), so every request in flight or held fails with EIO
 * at once, and only then is the disk removed, which cannot wait for the
 * server any more. Data the page cache still holds is not written back:
 * whoever disconnects a device in use syncs it first. With
 * NBDWS_CF_KEEP_DEVICE the disk stays, empty, failing I/O, until a second
 * DISCONNECT removes it.
 */
void nbdws_dev_disconnect(struct nbdws_dev *dev)
{
	bool keep = dev->client_flags & NBDWS_CF_KEEP_DEVICE;
	unsigned int i;

	spin_lock_bh(&dev->held_lock);
	dev->disconnecting = true;
	spin_unlock_bh(&dev->held_lock);
	/* From here on nothing waits for a connection: it fails. */
	nbdws_fail_held(dev);

	for (i = 0; i < dev->nr_conns; i++)
		nbdws_conn_disconnect(dev->conns[i]);
	for (i = 0; i < dev->nr_conns; i++) {
		flush_work(&dev->conns[i]->dead_work);
		nbdws_conn_release_sock(dev->conns[i]);
	}
	cancel_delayed_work_sync(&dev->dead_timeout_work);
	nbdws_fail_held(dev);

	/*
	 * The in-flight view goes after the disk: while del_gendisk() waits
	 * for the requests to end, it shows which ones do not.
	 */
	if (dev->disk_added && !keep) {
		del_gendisk(dev->disk);
		dev->disk_added = false;
		nbdws_debugfs_remove(dev);
	}

	spin_lock_bh(&dev->held_lock);
	dev->state = NBDWS_DEV_DISCONNECTED;
	spin_unlock_bh(&dev->held_lock);
	if (dev->disk_added) {
		set_capacity_and_notify(dev->disk, 0);
		kobject_uevent(&disk_to_dev(dev->disk)->kobj, KOBJ_CHANGE);
	}
	nbdws_event(dev, NBDWS_EVENT_DISCONNECTED, -1, NBDWS_REASON_USER);
}

/*
 * Whether the kept, disconnected @dev can serve the export @cfg over
 * cfg->nr_conns connections: its tag set stays, so the queue depth must
 * match and the connections must fit in its slots. Changes nothing.
 */
int nbdws_dev_reuse_check(struct nbdws_dev *dev,
			  const struct nbdws_dev_config *cfg,
			  struct netlink_ext_ack *extack)
{
	if (cfg->depth != dev->depth) {
		NL_SET_ERR_MSG(extack,
			       "a kept device keeps its queue depth: disconnect it again to remove it first");
		return -EINVAL;
	}
	if (cfg->nr_conns > dev->nr_conns) {
		NL_SET_ERR_MSG(extack,
			       "more connections than the kept device has slots: disconnect it again to remove it first");
		return -EINVAL;
	}
	return 0;
}

/*
 * Give the kept, disconnected @dev the export @cfg (nbdws_dev_reuse_check()
 * passed): its configuration and queue limits. All or nothing: @dev is
 * changed only once nothing can fail any more, so a CONNECT refused here
 * leaves the kept device as it was. A block size change needs a disk
 * nobody holds open (its page cache and any file system on it were laid
 * out for the old one), checked under open_mutex so that nobody opens it
 * meanwhile. Still empty and failing I/O afterwards; the caller starts
 * its connections, then calls nbdws_dev_restart().
 */
int nbdws_dev_reuse(struct nbdws_dev *dev, const struct nbdws_dev_config *cfg,
		    struct netlink_ext_ack *extack)
{
	bool bs_change = cfg->block_size != dev->block_size ||
			 max(cfg->block_pref, cfg->block_size) !=
			 max(dev->block_pref, dev->block_size);
	struct nbdws_limits lim;
	int ret;

	mutex_lock(&dev->disk->open_mutex);
	if (bs_change && disk_openers(dev->disk)) {
		mutex_unlock(&dev->disk->open_mutex);
		NL_SET_ERR_MSG(extack,
			       "the block size changes but the kept device is open");
		return -EBUSY;
	}
	nbdws_fill_limits(cfg, &lim);
	ret = nbdws_update_limits(dev->disk, &lim);
	if (!ret) {
		nbdws_dev_set_config(dev, cfg);
		/* Nothing cached from the previous export may be read back. */
		invalidate_bdev(dev->disk->part0);
		/* New limits reset it; the new export may differ anyway. */
		nbdws_dev_set_readahead(dev);
	}
	mutex_unlock(&dev->disk->open_mutex);
	if (ret) {
		NL_SET_ERR_MSG(extack, "cannot apply the new queue limits");
		return ret;
	}
	nbdws_dev_set_timeout(dev, dev->timeout_ms);
	nbdws_dev_set_ro(dev);

	/*
	 * From here on a connection that dies is handled as on a new device
	 * (held for the dead-connection timeout), not as part of DISCONNECT.
	 */
	spin_lock_bh(&dev->held_lock);
	dev->disconnecting = false;
	dev->failing = false;
	dev->state = NBDWS_DEV_RUNNING;
	spin_unlock_bh(&dev->held_lock);
	dev->disc_code = 0;
	return 0;
}

/* Connections are started: serve I/O and show the new size. */
void nbdws_dev_restart(struct nbdws_dev *dev)
{
	/* Whatever was parked before the first connection came goes out. */
	if (atomic_read(&dev->live))
		nbdws_release_held(dev);
	/* The new export's partitions: scanned by the next opener. */
	set_bit(GD_NEED_PART_SCAN, &dev->disk->state);
	set_capacity_and_notify(dev->disk, dev->size >> SECTOR_SHIFT);
	kobject_uevent(&disk_to_dev(dev->disk)->kobj, KOBJ_CHANGE);
}

/*
 * Remove a device (locked; nbdws_dev_disconnect() ran if it was started)
 * and drop the IDR's reference: the memory goes with the last reference,
 * while commands that waited for the lock find the device gone.
 */
void nbdws_dev_destroy(struct nbdws_dev *dev)
{
	unsigned int i;

	lockdep_assert_held(&dev->lock);
	dev->gone = true;
	spin_lock_bh(&dev->held_lock);
	dev->disconnecting = true;
	spin_unlock_bh(&dev->held_lock);
	if (dev->disk_added) {
		del_gendisk(dev->disk);
		dev->disk_added = false;
	}
	nbdws_debugfs_remove(dev);
	for (i = 0; i < dev->nr_conns; i++) {
		nbdws_conn_mark_dead(dev->conns[i], NBDWS_REASON_USER);
		flush_work(&dev->conns[i]->dead_work);
		nbdws_conn_release_sock(dev->conns[i]);
	}
	cancel_delayed_work_sync(&dev->dead_timeout_work);
	put_disk(dev->disk);
	blk_mq_free_tag_set(&dev->tag_set);

	/* Only now, with the disk gone, may a new device take the index. */
	mutex_lock(&nbdws_idr_lock);
	idr_remove(&nbdws_idr, dev->index);
	mutex_unlock(&nbdws_idr_lock);
	nbdws_dev_put(dev);
}

/*
 * Give every connection a hardware queue of its own (blk-mq allows one
 * per CPU at most), if it does not have one yet. The queue is frozen
 * first, so nothing is in flight while blk-mq reallocates the tag set, and
 * the receive path (which a hostile peer can wake at any time) is kept
 * out of the tag set meanwhile: the softirq parser is paused, rx_work
 * waits for tags_rwsem. The freeze waits at most NBDWS_FREEZE_JIFFIES for
 * the requests in flight; when a server does not answer them, the queues
 * stay as they are (queue_rq spreads requests over all connections
 * anyway) and the next RECONFIGURE tries again.
 */
void nbdws_dev_update_hw_queues(struct nbdws_dev *dev)
{
	unsigned int want = min_t(unsigned int, dev->nr_conns, nr_cpu_ids);
	struct request_queue *q = dev->disk->queue;

	if (dev->tag_set.nr_hw_queues >= want)
		return;
	blk_freeze_queue_start(q);
	if (!blk_mq_freeze_queue_wait_timeout(q, NBDWS_FREEZE_JIFFIES)) {
		nbdws_unfreeze_queue_started(q);
		dev_info(disk_to_dev(dev->disk),
			 "I/O in flight did not drain: connections share hardware queues for now\n");
		return;
	}
	nbdws_rx_pause(dev);
	down_write(&dev->tags_rwsem);
	blk_mq_update_nr_hw_queues(&dev->tag_set, dev->nr_conns);
	up_write(&dev->tags_rwsem);
	nbdws_rx_resume(dev);
	nbdws_unfreeze_queue_started(q);
}

/*
 * Connections nbdws_dev_grow()..@nr_conns - 1 were attached by the caller
 * (RECONFIGURE): publish them to queue_rq, let them serve what was held,
 * then try to give them hardware queues.
 */
void nbdws_dev_grow(struct nbdws_dev *dev, unsigned int nr_conns)
{
	/* Pairs with queue_rq: the new slots are set up before they count. */
	smp_store_release(&dev->nr_conns, nr_conns);
	nbdws_release_held(dev);
	nbdws_dev_update_hw_queues(dev);
}

/* The device at @index with a reference, or NULL; not locked. */
struct nbdws_dev *nbdws_dev_get(int index)
{
	struct nbdws_dev *dev = NULL;

	if (index < 0)
		return NULL;
	mutex_lock(&nbdws_idr_lock);
	dev = idr_find(&nbdws_idr, index);
	if (dev)
		kref_get(&dev->ref);
	mutex_unlock(&nbdws_idr_lock);
	return dev;
}

/* The device with the smallest index >= *index, with a reference. */
struct nbdws_dev *nbdws_dev_get_next(int *index)
{
	struct nbdws_dev *dev;

	mutex_lock(&nbdws_idr_lock);
	dev = idr_get_next(&nbdws_idr, index);
	if (dev)
		kref_get(&dev->ref);
	mutex_unlock(&nbdws_idr_lock);
	return dev;
}

/*
 * Module unload: no device may be created any more, every one is torn
 * down, while the netlink family still carries their events.
 */
void nbdws_dev_remove_all(void)
{
	struct nbdws_dev *dev;
	int index = 0;

	mutex_lock(&nbdws_idr_lock);
	nbdws_unloading = true;
	mutex_unlock(&nbdws_idr_lock);
	while ((dev = nbdws_dev_get_next(&index))) {
		mutex_lock(&dev->lock);
		if (!dev->gone) {
			if (dev->state != NBDWS_DEV_DISCONNECTED)
				nbdws_dev_disconnect(dev);
			nbdws_dev_destroy(dev);
		}
		mutex_unlock(&dev->lock);
		nbdws_dev_put(dev);
		index = 0;
	}
}

void nbdws_dev_exit(void)
{
	idr_destroy(&nbdws_idr);
}
