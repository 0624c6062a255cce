//! `ferrio serve` on several nodes: with `cluster.adapter = "redis"`, every namespace's rooms,
//! broadcasts and server-side events go through Redis ([`ferrio_redis_adapter`]), shared with
//! every node on the same Redis and channel prefix (Node Socket.IO nodes included).
//!
//! `ferrio_cluster_nodes` (a gauge, refreshed every half second) counts the nodes serving `/`;
//! an alert on it going below `cluster.nodes` finds a lost node.
//!
//! The link to Redis never stops the server: a node starts while Redis is down and joins the
//! cluster when it comes up; while the link is down, broadcasts reach this node's clients only,
//! `/ready` says so and `ferrio_redis_connected` is 0. `/ready` stays 200 then, on purpose: when
//! Redis fails, it fails for every node at once, and taking them all out of the load balancer
//! would turn a degraded service (local delivery) into none.

use std::time::Duration;

use anyhow::Context;
use ferrio_redis_adapter::{RedisAdapterConfig, RedisNode};
use ferrio_socketio::SocketIoConfig;

use crate::config::model::{AdapterKind, Cluster};

/// How often the link's state is looked at, to log its changes.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// The longest `/ready` waits for Redis to count the nodes.
const COUNT_TIMEOUT: Duration = Duration::from_secs(1);
/// The gauge of the nodes serving `/` as Redis counts them (this one included); 0 while Redis
/// cannot say.
const NODES: &str = "ferrio_cluster_nodes";

/// This node's link to the other nodes, when `cluster.adapter = "redis"`.
#[derive(Debug, Clone)]
pub(crate) struct ClusterLink {
    node: RedisNode,
    /// The Redis address without its credentials, for logs.
    shown_url: String,
}

impl ClusterLink {
    /// Starts the Redis link the configuration asks for, or `None` for a single node. Returns
    /// at once: Redis may come up later. Must run within the Tokio runtime.
    ///
    /// `history_shared`: whether history offsets come from the cluster's one store
    /// (`history.store = "redis"`), so a durable message keeps its offset on every node.
    pub(crate) fn start(cluster: &Cluster, history_shared: bool) -> anyhow::Result<Option<Self>> {
        if cluster.adapter == AdapterKind::Local {
            return Ok(None);
        }
        anyhow::ensure!(
            !cluster.redis_url.is_empty(),
            "cluster.adapter is \"redis\" but cluster.redis_url is empty"
        );
        let config = RedisAdapterConfig {
            key: cluster.redis_key.clone(),
            requests_timeout: cluster.request_timeout,
            share_assigned_offsets: history_shared,
            ..RedisAdapterConfig::new(cluster.redis_url.clone())
        };
        let node = RedisNode::new(config).context("cluster.redis_url")?;
        let link = Self {
            node,
            shown_url: without_credentials(&cluster.redis_url),
        };
        tracing::info!(
            "cluster: Redis adapter on {} (channel prefix {:?}), node {}",
            link.shown_url,
            cluster.redis_key,
            link.node.uid()
        );
        tokio::spawn(watch(link.node.clone(), link.shown_url.clone()));
        Ok(Some(link))
    }

    /// Puts the Redis adapter in the server's configuration.
    pub(crate) fn install(&self, config: &mut SocketIoConfig) {
        config.adapter = self.node.factory();
    }

    /// The readiness line: the link's state and, when up, how many nodes serve `/`.
    pub(crate) async fn status(&self) -> String {
        if !self.node.is_connected() {
            return "cluster: redis down (broadcasts reach this node's clients only)".to_owned();
        }
        match tokio::time::timeout(COUNT_TIMEOUT, self.node.server_count("/")).await {
            Ok(count) if count > 0 => format!("cluster: redis up, {count} nodes"),
            _ => "cluster: redis up".to_owned(),
        }
    }
}

/// The body of `/ready` for a node that is not shutting down.
pub(crate) async fn readiness(link: Option<&ClusterLink>) -> String {
    match link {
        None => "ready".to_owned(),
        Some(link) => format!("ready\n{}\n", link.status().await),
    }
}

/// Logs each change of the link's state and keeps [`NODES`] current, for as long as the
/// process runs.
async fn watch(node: RedisNode, shown_url: String) {
    let mut up = false;
    let mut interval = tokio::time::interval(WATCH_INTERVAL);
    loop {
        interval.tick().await;
        let now = node.is_connected();
        // Asked of Redis only while it answers; 0 says "unknown" while it does not.
        let count = if now {
            tokio::time::timeout(COUNT_TIMEOUT, node.server_count("/"))
                .await
                .unwrap_or(0)
        } else {
            0
        };
        metrics::gauge!(NODES).set(count as f64);
        if now != up {
            if now {
                tracing::info!("cluster: connected to Redis at {shown_url}");
            } else {
                tracing::warn!(
                    "cluster: Redis at {shown_url} unreachable; broadcasts reach this node's \
                     clients only until it is back"
                );
            }
            up = now;
        }
    }
}

/// A Redis URL with any `user:password@` removed, fit for logs.
fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_logs() {
        assert_eq!(
            without_credentials("redis://:s3cret@redis:6379/0"),
            "redis://redis:6379/0"
        );
        assert_eq!(
            without_credentials("rediss://user:p@ss@host/"),
            "rediss://host/"
        );
        assert_eq!(
            without_credentials("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
    }

    #[tokio::test]
    async fn a_local_adapter_starts_no_link_and_an_invalid_url_is_refused() {
        assert!(ClusterLink::start(&Cluster::default(), false)
            .unwrap()
            .is_none());
        let bad = Cluster {
            adapter: AdapterKind::Redis,
            redis_url: "http://127.0.0.1:6379".to_owned(),
            ..Cluster::default()
        };
        let error = format!("{:#}", ClusterLink::start(&bad, false).unwrap_err());
        assert!(
            error.starts_with("cluster.redis_url: invalid Redis URL: "),
            "{error}"
        );
        assert_eq!(readiness(None).await, "ready");
    }
}
