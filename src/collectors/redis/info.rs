//! The `INFO` reply, parsed. Pure: tested on real output of redis-server
//! 7.0.15 (Debian 12), primary and replica.
//!
//! Fields are read by name; a field a version lacks (`maxclients` before
//! 7.0, `server_time_usec` before 6.2) is `None`, and a known field that is
//! not a number is an error.

use std::collections::BTreeMap;

/// A replica as its primary lists it (`slaveN:ip=...,port=...,offset=...`).
#[derive(Clone, Debug, PartialEq)]
pub struct Replica {
    /// `ip:port` as the replica announced it.
    pub address: String,
    /// `online`, `wait_bgsave`, `send_bulk`, ...
    pub state: String,
    /// The replication offset the replica last acknowledged.
    pub offset: f64,
}

/// The figures vitals uses from one `INFO` reply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Info {
    pub version: Option<String>,
    pub uptime_seconds: Option<f64>,
    /// The server's clock (`server_time_usec`), seconds since the epoch.
    pub server_time: Option<f64>,
    pub connected_clients: Option<f64>,
    pub blocked_clients: Option<f64>,
    pub maxclients: Option<f64>,
    pub used_memory: Option<f64>,
    pub used_memory_rss: Option<f64>,
    pub used_memory_peak: Option<f64>,
    /// `None` when 0 (no limit).
    pub maxmemory: Option<f64>,
    pub maxmemory_policy: Option<String>,
    pub mem_fragmentation_ratio: Option<f64>,
    pub keyspace_hits: Option<f64>,
    pub keyspace_misses: Option<f64>,
    pub evicted_keys: Option<f64>,
    pub expired_keys: Option<f64>,
    pub total_commands_processed: Option<f64>,
    pub total_connections_received: Option<f64>,
    pub rejected_connections: Option<f64>,
    /// `master` or `slave`, as Redis says.
    pub role: Option<String>,
    /// On a replica: `master_link_status:up`.
    pub master_link_up: Option<bool>,
    /// On a replica: seconds since the last I/O with the primary; `None`
    /// while the link is down (Redis reports -1).
    pub master_last_io_seconds: Option<f64>,
    /// On a replica: seconds the link has been down.
    pub master_link_down_seconds: Option<f64>,
    pub master_repl_offset: Option<f64>,
    /// On a primary: its replicas.
    pub replicas: Vec<Replica>,
    pub rdb_last_bgsave_ok: Option<bool>,
    pub rdb_last_save_time: Option<f64>,
    pub rdb_changes_since_last_save: Option<f64>,
    pub aof_enabled: Option<bool>,
    pub aof_last_write_ok: Option<bool>,
    pub aof_last_bgrewrite_ok: Option<bool>,
    /// `dbN:keys=..,expires=..`: (db index, keys, keys with an expiry).
    pub keyspace: Vec<(String, f64, f64)>,
}

/// The text is not an `INFO` reply or a known field is garbage.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("INFO: {0}")]
pub struct InfoError(pub String);

/// Parses the text of an `INFO` reply (CRLF or LF line ends).
pub fn parse_info(text: &str) -> Result<Info, InfoError> {
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            fields.insert(k, v);
        }
    }
    if !fields.contains_key("redis_version") && !fields.contains_key("role") {
        return Err(InfoError(
            "neither redis_version nor role found; not an INFO reply".into(),
        ));
    }
    let num = |key: &str| -> Result<Option<f64>, InfoError> {
        match fields.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Some)
                .ok_or_else(|| InfoError(format!("{key}: {v:?} is not a number"))),
        }
    };
    let text_of = |key: &str| fields.get(key).map(|v| v.trim().to_owned());
    let status_ok = |key: &str| fields.get(key).map(|v| v.trim() == "ok");
    let mut replicas = Vec::new();
    let mut keyspace = Vec::new();
    for (key, value) in &fields {
        if key.starts_with("slave") && key[5..].parse::<u32>().is_ok() {
            replicas.push(parse_replica(key, value)?);
        } else if key.starts_with("db") && key[2..].parse::<u32>().is_ok() {
            let kv = key_values(value);
            let get = |k: &str| -> Result<f64, InfoError> {
                kv.get(k)
                    .and_then(|v| v.parse::<f64>().ok())
                    .ok_or_else(|| InfoError(format!("{key}: no number {k} in {value:?}")))
            };
            keyspace.push((key[2..].to_owned(), get("keys")?, get("expires")?));
        }
    }
    // BTreeMap order is "slave0, slave1, slave10, slave2": sort by number.
    keyspace.sort_by_key(|(db, _, _)| db.parse::<u32>().unwrap_or(u32::MAX));
    Ok(Info {
        version: text_of("redis_version"),
        uptime_seconds: num("uptime_in_seconds")?,
        server_time: num("server_time_usec")?.map(|us| us / 1e6),
        connected_clients: num("connected_clients")?,
        blocked_clients: num("blocked_clients")?,
        maxclients: num("maxclients")?,
        used_memory: num("used_memory")?,
        used_memory_rss: num("used_memory_rss")?,
        used_memory_peak: num("used_memory_peak")?,
        maxmemory: num("maxmemory")?.filter(|m| *m > 0.0),
        maxmemory_policy: text_of("maxmemory_policy"),
        mem_fragmentation_ratio: num("mem_fragmentation_ratio")?,
        keyspace_hits: num("keyspace_hits")?,
        keyspace_misses: num("keyspace_misses")?,
        evicted_keys: num("evicted_keys")?,
        expired_keys: num("expired_keys")?,
        total_commands_processed: num("total_commands_processed")?,
        total_connections_received: num("total_connections_received")?,
        rejected_connections: num("rejected_connections")?,
        role: text_of("role"),
        master_link_up: fields.get("master_link_status").map(|v| v.trim() == "up"),
        master_last_io_seconds: num("master_last_io_seconds_ago")?.filter(|s| *s >= 0.0),
        master_link_down_seconds: num("master_link_down_since_seconds")?.filter(|s| *s >= 0.0),
        master_repl_offset: num("master_repl_offset")?,
        replicas,
        rdb_last_bgsave_ok: status_ok("rdb_last_bgsave_status"),
        rdb_last_save_time: num("rdb_last_save_time")?,
        rdb_changes_since_last_save: num("rdb_changes_since_last_save")?,
        aof_enabled: num("aof_enabled")?.map(|v| v != 0.0),
        aof_last_write_ok: status_ok("aof_last_write_status"),
        aof_last_bgrewrite_ok: status_ok("aof_last_bgrewrite_status"),
        keyspace,
    })
}

/// `a=1,b=2` into a map.
fn key_values(text: &str) -> BTreeMap<&str, &str> {
    text.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// `ip=127.0.0.1,port=26392,state=online,offset=147,lag=0`.
fn parse_replica(key: &str, value: &str) -> Result<Replica, InfoError> {
    let kv = key_values(value);
    let field = |k: &str| {
        kv.get(k)
            .copied()
            .ok_or_else(|| InfoError(format!("{key}: no {k} in {value:?}")))
    };
    let offset = field("offset")?;
    Ok(Replica {
        address: format!("{}:{}", field("ip")?, field("port")?),
        state: field("state")?.to_owned(),
        offset: offset
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| InfoError(format!("{key}: offset {offset:?} is not a number")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // redis-server 7.0.15 (Debian 12 package), `INFO` on a primary with
    // maxmemory 64mb and one streaming replica, and on that replica.
    const PRIMARY: &str = include_str!("../../../tests/fixtures/redis/info-7.0.15-primary.txt");
    const REPLICA: &str = include_str!("../../../tests/fixtures/redis/info-7.0.15-replica.txt");

    #[test]
    fn primary_fields() {
        assert!(
            PRIMARY.contains("\r\n"),
            "the fixture keeps the wire's CRLF"
        );
        let i = parse_info(PRIMARY).unwrap();
        assert_eq!(i.version.as_deref(), Some("7.0.15"));
        assert_eq!(i.role.as_deref(), Some("master"));
        assert_eq!(i.maxmemory, Some(67108864.0));
        assert_eq!(i.maxmemory_policy.as_deref(), Some("noeviction"));
        assert_eq!(i.maxclients, Some(10000.0));
        assert_eq!(i.connected_clients, Some(1.0));
        assert_eq!(i.blocked_clients, Some(0.0));
        assert!(i.used_memory.is_some_and(|m| m > 1e6));
        assert!(i.used_memory_rss.is_some() && i.used_memory_peak.is_some());
        assert!(i.mem_fragmentation_ratio.is_some());
        assert!(i.server_time.is_some_and(|t| t > 1.7e9));
        assert_eq!(i.master_link_up, None);
        assert_eq!(i.rdb_last_bgsave_ok, Some(true));
        assert_eq!(i.aof_enabled, Some(false));
        assert_eq!(i.aof_last_write_ok, Some(true));
        assert_eq!(
            i.replicas,
            [Replica {
                address: "127.0.0.1:26392".into(),
                state: "online".into(),
                offset: i.replicas[0].offset,
            }]
        );
        let lag = i.master_repl_offset.unwrap() - i.replicas[0].offset;
        assert!((0.0..1000.0).contains(&lag), "{lag}");
        assert_eq!(i.keyspace.len(), 1);
        assert_eq!(i.keyspace[0].0, "0");
    }

    #[test]
    fn replica_fields() {
        let i = parse_info(REPLICA).unwrap();
        assert_eq!(i.role.as_deref(), Some("slave"));
        assert_eq!(i.master_link_up, Some(true));
        assert_eq!(i.master_last_io_seconds, Some(0.0));
        assert!(i.replicas.is_empty());
    }

    #[test]
    fn unlimited_memory_and_down_link_are_absent_not_zero() {
        let i = parse_info(
            "# Server\r\nredis_version:6.0.16\r\n# Memory\r\nmaxmemory:0\r\n# Replication\r\nrole:slave\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\nmaster_link_down_since_seconds:12\r\n",
        )
        .unwrap();
        assert_eq!(i.maxmemory, None);
        assert_eq!(i.master_link_up, Some(false));
        assert_eq!(i.master_last_io_seconds, None);
        assert_eq!(i.master_link_down_seconds, Some(12.0));
        // Fields a version lacks are None.
        assert_eq!(i.maxclients, None);
        assert_eq!(i.server_time, None);
    }

    #[test]
    fn replicas_and_databases_in_number_order() {
        let mut text = String::from("role:master\nmaster_repl_offset:500\n");
        for n in 0..12 {
            text.push_str(&format!(
                "slave{n}:ip=10.0.0.{n},port=6379,state=online,offset={},lag=0\n",
                400 + n
            ));
        }
        text.push_str("db10:keys=1,expires=0,avg_ttl=0\ndb2:keys=5,expires=1,avg_ttl=9\n");
        let i = parse_info(&text).unwrap();
        assert_eq!(i.replicas.len(), 12);
        assert_eq!(
            i.keyspace,
            [("2".to_owned(), 5.0, 1.0), ("10".to_owned(), 1.0, 0.0)]
        );
    }

    #[test]
    fn garbage_is_an_error_naming_the_field() {
        assert!(parse_info("").is_err());
        assert!(parse_info("HTTP/1.1 200 OK\r\n\r\n<html>").is_err());
        let e = parse_info("redis_version:7.0.15\r\nused_memory:12k\r\n").unwrap_err();
        assert_eq!(e.0, "used_memory: \"12k\" is not a number");
        let e = parse_info("role:master\r\nslave0:ip=a,port=1,state=online\r\n").unwrap_err();
        assert!(e.0.contains("slave0: no offset"), "{e}");
        let e = parse_info("role:master\r\nkeyspace_hits:NaN\r\n").unwrap_err();
        assert!(e.0.contains("keyspace_hits"), "{e}");
    }
}
