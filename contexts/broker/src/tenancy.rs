//! A tenant's projects and their environments (seed 004): what requests and policies'
//! selectors name. One aggregate per tenant, so a project's name is unique in the tenant and
//! an environment's in its project; an archived project takes no new environment. Projects
//! are archived, never deleted; environments are deleted.

use aegis_kernel::{payload, Aggregate, DecodeError};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::{Message, NewEvent};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const MAX_PROJECTS: usize = 500;
pub const MAX_ENVIRONMENTS: usize = 2000;
/// What an environment is for.
pub const ENVIRONMENT_TYPES: &[&str] = &["dev", "staging", "uat", "prod", "other"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    pub owner_team_id: String,
    /// `active` or `archived`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub project_id: Uuid,
    pub name: String,
    pub kind: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tenancy {
    pub projects: BTreeMap<Uuid, Project>,
    pub environments: BTreeMap<Uuid, Environment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    CreateProject {
        id: Uuid,
        name: String,
        owner_team_id: String,
        status: String,
    },
    SetStatus {
        id: Uuid,
        status: String,
    },
    CreateEnvironment {
        id: Uuid,
        project_id: Uuid,
        name: String,
        kind: String,
    },
    DeleteEnvironment {
        id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ProjectCreated {
        id: Uuid,
        name: String,
        owner_team_id: String,
        status: String,
    },
    StatusChanged {
        id: Uuid,
        status: String,
    },
    EnvironmentCreated {
        id: Uuid,
        project_id: Uuid,
        name: String,
        kind: String,
    },
    EnvironmentDeleted {
        id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenancyError {
    #[error("project not found")]
    ProjectNotFound,
    #[error("environment not found")]
    EnvironmentNotFound,
    #[error("a project named `{0}` already exists")]
    ProjectNameTaken(String),
    #[error("environment with this name already exists in the project")]
    EnvironmentNameTaken,
    #[error("the project is archived: it takes no new environment")]
    Archived,
    #[error("a tenant has at most {0} of these")]
    TooMany(usize),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
}

fn name_ok(name: &str) -> Result<(), TenancyError> {
    if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(TenancyError::Invalid {
            field: "name",
            message: "1 to 200 characters, no control characters",
        });
    }
    Ok(())
}

fn status_ok(status: &str) -> Result<(), TenancyError> {
    if !matches!(status, "active" | "archived") {
        return Err(TenancyError::Invalid {
            field: "status",
            message: "status must be active or archived",
        });
    }
    Ok(())
}

pub struct TenancyAggregate;

impl Aggregate for TenancyAggregate {
    const CONTEXT: &'static str = "broker";
    const AGGREGATE: &'static str = "tenancy";
    type State = Tenancy;
    type Command = Command;
    type Event = Event;
    type Error = TenancyError;

    fn decide(t: &Tenancy, cmd: &Command) -> Result<Vec<Event>, TenancyError> {
        use TenancyError as E;
        match cmd {
            Command::CreateProject {
                id,
                name,
                owner_team_id,
                status,
            } => {
                name_ok(name)?;
                status_ok(status)?;
                if owner_team_id.len() > 200 {
                    return Err(E::Invalid {
                        field: "owner_team_id",
                        message: "at most 200 bytes",
                    });
                }
                if t.projects.len() >= MAX_PROJECTS {
                    return Err(E::TooMany(MAX_PROJECTS));
                }
                if t.projects.contains_key(id)
                    || t.projects
                        .values()
                        .any(|p| p.name.eq_ignore_ascii_case(name))
                {
                    return Err(E::ProjectNameTaken(name.clone()));
                }
                Ok(vec![Event::ProjectCreated {
                    id: *id,
                    name: name.clone(),
                    owner_team_id: owner_team_id.clone(),
                    status: status.clone(),
                }])
            }
            Command::SetStatus { id, status } => {
                status_ok(status)?;
                let p = t.projects.get(id).ok_or(E::ProjectNotFound)?;
                Ok(if p.status == *status {
                    vec![]
                } else {
                    vec![Event::StatusChanged {
                        id: *id,
                        status: status.clone(),
                    }]
                })
            }
            Command::CreateEnvironment {
                id,
                project_id,
                name,
                kind,
            } => {
                name_ok(name)?;
                if !ENVIRONMENT_TYPES.contains(&kind.as_str()) {
                    return Err(E::Invalid {
                        field: "type",
                        message: "type must be one of dev|staging|uat|prod|other",
                    });
                }
                let p = t.projects.get(project_id).ok_or(E::ProjectNotFound)?;
                if p.status == "archived" {
                    return Err(E::Archived);
                }
                if t.environments.len() >= MAX_ENVIRONMENTS {
                    return Err(E::TooMany(MAX_ENVIRONMENTS));
                }
                if t.environments.contains_key(id)
                    || t.environments
                        .values()
                        .any(|e| e.project_id == *project_id && e.name.eq_ignore_ascii_case(name))
                {
                    return Err(E::EnvironmentNameTaken);
                }
                Ok(vec![Event::EnvironmentCreated {
                    id: *id,
                    project_id: *project_id,
                    name: name.clone(),
                    kind: kind.clone(),
                }])
            }
            Command::DeleteEnvironment { id } => {
                t.environments.get(id).ok_or(E::EnvironmentNotFound)?;
                Ok(vec![Event::EnvironmentDeleted { id: *id }])
            }
        }
    }

    fn evolve(mut t: Tenancy, event: &Event, env: &Envelope) -> Tenancy {
        let at = aegis_kernel::occurred_at_ms(env).unwrap_or_default();
        match event {
            Event::ProjectCreated {
                id,
                name,
                owner_team_id,
                status,
            } => {
                t.projects.insert(
                    *id,
                    Project {
                        name: name.clone(),
                        owner_team_id: owner_team_id.clone(),
                        status: status.clone(),
                        created_at: at,
                        updated_at: at,
                    },
                );
            }
            Event::StatusChanged { id, status } => {
                if let Some(p) = t.projects.get_mut(id) {
                    p.status = status.clone();
                    p.updated_at = at;
                }
            }
            Event::EnvironmentCreated {
                id,
                project_id,
                name,
                kind,
            } => {
                t.environments.insert(
                    *id,
                    Environment {
                        project_id: *project_id,
                        name: name.clone(),
                        kind: kind.clone(),
                        created_at: at,
                    },
                );
            }
            Event::EnvironmentDeleted { id } => {
                t.environments.remove(id);
            }
        }
        t
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::ProjectCreated {
                id,
                name,
                owner_team_id,
                status,
            } => NewEvent::new(
                "project.created.v1",
                pb::ProjectCreated {
                    project_id: id.to_string(),
                    name: name.clone(),
                    owner_team_id: owner_team_id.clone(),
                    status: status.clone(),
                }
                .encode_to_vec(),
            ),
            Event::StatusChanged { id, status } => NewEvent::new(
                "project.status_changed.v1",
                pb::ProjectStatusChanged {
                    project_id: id.to_string(),
                    status: status.clone(),
                }
                .encode_to_vec(),
            ),
            Event::EnvironmentCreated {
                id,
                project_id,
                name,
                kind,
            } => NewEvent::new(
                "environment.created.v1",
                pb::EnvironmentCreated {
                    environment_id: id.to_string(),
                    project_id: project_id.to_string(),
                    name: name.clone(),
                    r#type: kind.clone(),
                }
                .encode_to_vec(),
            ),
            Event::EnvironmentDeleted { id } => NewEvent::new(
                "environment.deleted.v1",
                pb::EnvironmentDeleted {
                    environment_id: id.to_string(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let id = |s: &str| Uuid::parse_str(s).map_err(|e| DecodeError::new(env, e));
        Ok(match env.event_type.as_str() {
            "project.created.v1" => {
                let m: pb::ProjectCreated = payload(env)?;
                Event::ProjectCreated {
                    id: id(&m.project_id)?,
                    name: m.name,
                    owner_team_id: m.owner_team_id,
                    status: m.status,
                }
            }
            "project.status_changed.v1" => {
                let m: pb::ProjectStatusChanged = payload(env)?;
                Event::StatusChanged {
                    id: id(&m.project_id)?,
                    status: m.status,
                }
            }
            "environment.created.v1" => {
                let m: pb::EnvironmentCreated = payload(env)?;
                Event::EnvironmentCreated {
                    id: id(&m.environment_id)?,
                    project_id: id(&m.project_id)?,
                    name: m.name,
                    kind: m.r#type,
                }
            }
            "environment.deleted.v1" => {
                let m: pb::EnvironmentDeleted = payload(env)?;
                Event::EnvironmentDeleted {
                    id: id(&m.environment_id)?,
                }
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("not a projects event: {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
#[path = "tenancy_tests.rs"]
mod tests;
