//! Topic discovery: PARTITIONED_METADATA, LOOKUP and GET_TOPICS_OF_NAMESPACE. Errors go back in
//! each command's own response type: the C++ client waits for that type and would only time
//! out on a plain ERROR.

use crate::Shared;
use crate::error::BinaryError;
use magnetar_auth::{Operation, Principal, Resource};
use magnetar_core::{NamespaceName, TopicName};
use magnetar_protocol::Frame;
use magnetar_protocol::proto::{
    CommandGetTopicsOfNamespace, CommandGetTopicsOfNamespaceResponse, CommandLookupTopic, CommandLookupTopicResponse,
    CommandPartitionedTopicMetadata, CommandPartitionedTopicMetadataResponse, LookupResult,
    PartitionedTopicMetadataResult,
};

pub fn topic_name(raw: &str) -> Result<TopicName, BinaryError> {
    raw.parse().map_err(|_| BinaryError::InvalidTopic(raw.to_string()))
}

async fn authorize_lookup(shared: &Shared, principal: &Principal, topic: &TopicName) -> Result<(), BinaryError> {
    shared.auth.check(principal, Operation::LookupTopic, Resource::from(topic)).await?;
    Ok(())
}

pub async fn partitioned_metadata(
    shared: &Shared,
    principal: &Principal,
    cmd: CommandPartitionedTopicMetadata,
) -> Frame {
    let request_id = cmd.request_id;
    let result = async {
        let topic = topic_name(&cmd.topic)?;
        authorize_lookup(shared, principal, &topic).await?;
        // A missing topic answers 0: the producer or consumer that follows creates it as the
        // namespace's auto-creation policy allows.
        let record = shared.broker.topics().record(&topic.base()).await?;
        Ok::<u32, BinaryError>(record.map_or(0, |r| if topic.partition_index().is_some() { 0 } else { r.partitions }))
    }
    .await;
    Frame::new(match result {
        Ok(partitions) => CommandPartitionedTopicMetadataResponse {
            partitions: Some(partitions),
            request_id,
            response: Some(PartitionedTopicMetadataResult::Success as i32),
            ..Default::default()
        },
        Err(e) => CommandPartitionedTopicMetadataResponse {
            request_id,
            response: Some(PartitionedTopicMetadataResult::Failed as i32),
            error: Some(e.code() as i32),
            message: Some(e.message()),
            ..Default::default()
        },
    })
}

/// Where a lookup sends the client.
struct Answer {
    url: String,
    /// What a TLS client connects to (`url` when it stays on its service URL: the proxying
    /// broker reaches the owner on the internal network).
    url_tls: Option<String>,
    /// Stay on the service URL and name `url` in CONNECT's `proxy_to_broker_url`.
    proxy: bool,
}

/// LOOKUP. Without a tier, or for a partition this broker owns: this listener's advertised URL.
/// For a partition another broker owns: that broker's internal URL with
/// `proxy_through_service_url`, so the client stays on its service URL and this broker (or
/// whichever one it reaches there) splices its connection to the owner; with
/// `broker.tier.lookup_owner_address`, the owner's advertised URL instead, for clients that
/// reach every broker. Always authoritative: the answer is the owner, never a redirect.
///
/// A client on the `pulsar+ssl://` listener (`tls`) is answered with TLS URLs: this listener's
/// without a tier; with `lookup_owner_address`, the owner's registered TLS URL (when the owner has
/// none, it is proxied); otherwise it is proxied, staying on its TLS connection to its service URL
/// while this broker reaches the owner over the internal network.
pub async fn lookup(shared: &Shared, principal: &Principal, cmd: CommandLookupTopic, tls: bool) -> Frame {
    let request_id = cmd.request_id;
    let result = async {
        let topic = topic_name(&cmd.topic)?;
        if topic.namespace().to_string() == "pulsar/system" && topic.local().starts_with("transaction_coordinator") {
            return Err(BinaryError::NotAllowed("transactions are not supported".into()));
        }
        authorize_lookup(shared, principal, &topic).await?;
        let tier = shared.broker.tier();
        let owner = match tier.lookup_owner(&topic).await {
            Ok(owner) => owner,
            // A missing namespace: the producer or consumer that follows is answered why.
            Err(magnetar_broker::BrokerError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let some = |url: &str| Some(url.to_string()).filter(|u| !u.is_empty());
        let Some(owner) = owner else {
            let urls = &shared.urls;
            return Ok(Answer { url: urls.advertised.clone(), url_tls: some(&urls.advertised_tls), proxy: false });
        };
        let reg = &owner.registration;
        // Straight to the owner when asked to and it has a listener of the client's kind;
        // else through the broker the client reached.
        let direct = tier.config().lookup_owner_address
            && if tls { !reg.binary_advertised_tls_url.is_empty() } else { !reg.binary_advertised_url.is_empty() };
        if direct {
            return Ok(Answer {
                url: reg.binary_advertised_url.clone(),
                url_tls: some(&reg.binary_advertised_tls_url),
                proxy: false,
            });
        }
        let url = &reg.binary_internal_url;
        if url.is_empty() {
            return Err(BinaryError::Broker(magnetar_broker::BrokerError::NotOwner(format!(
                "broker {}, which owns {topic}, serves no pulsar:// listener",
                reg.broker_id
            ))));
        }
        Ok(Answer { url: url.clone(), url_tls: Some(url.clone()), proxy: true })
    }
    .await;
    shared.broker.count_lookup(result.is_ok());
    Frame::new(match result {
        Ok(answer) => CommandLookupTopicResponse {
            broker_service_url: Some(answer.url),
            broker_service_url_tls: answer.url_tls,
            response: Some(LookupResult::Connect as i32),
            request_id,
            authoritative: Some(true),
            proxy_through_service_url: Some(answer.proxy),
            ..Default::default()
        },
        Err(e) => {
            tracing::debug!(topic = %cmd.topic, error = %e, "pulsar:// lookup refused");
            CommandLookupTopicResponse {
                response: Some(LookupResult::Failed as i32),
                request_id,
                error: Some(e.code() as i32),
                message: Some(e.message()),
                ..Default::default()
            }
        }
    })
}

/// The namespace's topics (partitions listed one by one, as Pulsar does), filtered by the
/// client's pattern when it sent one. Errors answer an empty list after logging: the response
/// type has no error field, and the C++ client polls it again.
pub async fn topics_of_namespace(shared: &Shared, principal: &Principal, cmd: CommandGetTopicsOfNamespace) -> Frame {
    let request_id = cmd.request_id;
    let result = async {
        let ns: NamespaceName = cmd.namespace.parse().map_err(|_| BinaryError::InvalidTopic(cmd.namespace.clone()))?;
        shared.auth.check(principal, Operation::ListNamespaceTopics, Resource::Namespace(&ns)).await?;
        let mut topics = shared.broker.topics().list(&ns).await?;
        let filtered = match cmd.topics_pattern.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => {
                // Clients send the pattern with its domain (`persistent://ns/t.*`).
                let re = regex::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| BinaryError::NotAllowed(format!("invalid topics pattern: {e}")))?;
                topics.retain(|t| re.is_match(t));
                true
            }
            None => false,
        };
        Ok::<_, BinaryError>((topics, filtered))
    }
    .await;
    let (topics, filtered) = result.unwrap_or_else(|e| {
        tracing::info!(namespace = %cmd.namespace, error = %e, "pulsar:// topics of namespace refused");
        (Vec::new(), false)
    });
    Frame::new(CommandGetTopicsOfNamespaceResponse {
        request_id,
        topics,
        filtered: Some(filtered),
        changed: Some(true),
        ..Default::default()
    })
}
