/* sockdiag.h: the accept queue of a listening socket, as `ss -l` shows it. */
#ifndef SCANQA_SOCKDIAG_H
#define SCANQA_SOCKDIAG_H

#include <stdbool.h>
#include <stdint.h>

/* Reads how many connections wait on listening socket fd for an accept (`ss -l`'s
 * Recv-Q) and the backlog the kernel applies (Send-Q: listen(2)'s backlog capped at
 * net.core.somaxconn). A unix socket is asked through NETLINK_SOCK_DIAG (unix_diag,
 * UNIX_DIAG_RQLEN, by inode), a TCP socket through TCP_INFO (tcpi_unacked and
 * tcpi_sacked hold these two on a listening socket). Returns false, with errno, when
 * the kernel does not answer. */
bool sockdiag_listen_queue(int fd, bool is_unix, uint32_t *queue, uint32_t *backlog);
/* Closes the netlink socket kept open between calls. */
void sockdiag_close(void);

#endif
