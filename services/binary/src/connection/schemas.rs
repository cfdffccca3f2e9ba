//! The schema registry commands: GET_SCHEMA and GET_OR_CREATE_SCHEMA, answered from the
//! registry the admin API serves (`magnetar_broker::schemas`), each error in the command's own
//! response type (the clients wait for that one).

use super::{Connection, Next};
use crate::error::BinaryError;
use crate::lookup::topic_name;
use crate::schema;
use magnetar_auth::{Operation, Resource};
use magnetar_protocol::Frame;
use magnetar_protocol::proto::*;

impl Connection {
    pub(super) async fn get_schema(&mut self, c: CommandGetSchema) -> Next {
        let result = async {
            let topic = topic_name(&c.topic)?;
            self.shared.auth.check(&self.credential.principal, Operation::GetSchema, Resource::from(&topic)).await?;
            let topics = self.shared.broker.topics();
            let found = match schema::parse_version(c.schema_version.as_deref().unwrap_or_default())? {
                Some(v) => topics.schema_version(&topic, v).await?,
                None => topics.schema(&topic).await?,
            };
            Ok::<_, BinaryError>((schema::schema_of(&topic.base().to_string(), &found)?, found.version))
        }
        .await;
        let answer = match result {
            Ok((found, version)) => CommandGetSchemaResponse {
                request_id: c.request_id,
                schema: Some(found),
                schema_version: Some(schema::version_bytes(version)),
                ..Default::default()
            },
            Err(e) => CommandGetSchemaResponse {
                request_id: c.request_id,
                // A topic without a schema (or without that version) is "topic not found" to
                // Pulsar's clients, as Pulsar's broker answers it.
                error_code: Some(e.code() as i32),
                error_message: Some(e.message()),
                ..Default::default()
            },
        };
        self.send(Frame::new(answer)).await
    }

    pub(super) async fn get_or_create_schema(&mut self, c: CommandGetOrCreateSchema) -> Next {
        let result = async {
            let topic = topic_name(&c.topic)?;
            self.shared.auth.check(&self.credential.principal, Operation::UpdateSchema, Resource::from(&topic)).await?;
            let Some(payload) = schema::payload_of(&c.schema)? else {
                return Err(BinaryError::NotAllowed("GET_OR_CREATE_SCHEMA needs a schema other than bytes".into()));
            };
            Ok(self.shared.broker.topics().add_client_schema(&topic, &payload).await?)
        }
        .await;
        let answer = match result {
            Ok(version) => CommandGetOrCreateSchemaResponse {
                request_id: c.request_id,
                schema_version: Some(schema::version_bytes(version)),
                ..Default::default()
            },
            Err(e) => CommandGetOrCreateSchemaResponse {
                request_id: c.request_id,
                error_code: Some(e.code() as i32),
                error_message: Some(e.message()),
                ..Default::default()
            },
        };
        self.send(Frame::new(answer)).await
    }
}
