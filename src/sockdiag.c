/* sockdiag.c: the accept queue of a listening socket, through sock_diag(7) for unix
 * sockets and TCP_INFO for TCP. The master samples it every tick for the status page;
 * one netlink socket is kept open for that. */
#include "sockdiag.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

static int nl = -1;

void sockdiag_close(void)
{
	if (nl >= 0)
		close(nl);
	nl = -1;
}

static bool unix_queue(int fd, uint32_t *queue, uint32_t *backlog)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return false;
	if (nl < 0) {
		nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);
		if (nl < 0)
			return false;
	}
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg;
	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST; /* one socket, by inode: no dump */
	msg.nlh.nlmsg_seq = 1;
	msg.req.sdiag_family = AF_UNIX;
	msg.req.udiag_states = ~0u;
	msg.req.udiag_ino = (unsigned)st.st_ino;
	msg.req.udiag_show = UDIAG_SHOW_RQLEN;
	msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0u; /* no cookie */
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(nl, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		goto fail;
	/* The kernel answers before sendto() returns. */
	long buf[1024];
	ssize_t n = recv(nl, buf, sizeof(buf), 0);
	if (n < 0)
		goto fail;
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(h);
			errno = -e->error;
			return false;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			continue;
		struct unix_diag_msg *m = NLMSG_DATA(h);
		int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
			if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
				struct unix_diag_rqlen *q = RTA_DATA(a);
				*queue = q->udiag_rqueue;
				*backlog = q->udiag_wqueue;
				return true;
			}
		}
	}
	errno = ENOENT;
	return false;
fail:
	/* A later call starts over with a new netlink socket. */
	{
		int e = errno;
		sockdiag_close();
		errno = e;
	}
	return false;
}

bool sockdiag_listen_queue(int fd, bool is_unix, uint32_t *queue, uint32_t *backlog)
{
	if (is_unix)
		return unix_queue(fd, queue, backlog);
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return false;
	*queue = ti.tcpi_unacked;
	*backlog = ti.tcpi_sacked;
	return true;
}
