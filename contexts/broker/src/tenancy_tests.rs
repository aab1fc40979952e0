//! Projects and environments, given / when / then.

use super::*;
use aegis_kernel::spec::given;

const PAYMENTS: Uuid = Uuid::from_u128(1);
const PROD: Uuid = Uuid::from_u128(2);

fn project(name: &str) -> Event {
    Event::ProjectCreated {
        id: PAYMENTS,
        name: name.into(),
        owner_team_id: String::new(),
        status: "active".into(),
    }
}

fn create_env(id: Uuid, name: &str) -> Command {
    Command::CreateEnvironment {
        id,
        project_id: PAYMENTS,
        name: name.into(),
        kind: "prod".into(),
    }
}

#[test]
fn project_names_are_unique_in_the_tenant() {
    given::<TenancyAggregate>(vec![project("Payments")])
        .when(Command::CreateProject {
            id: Uuid::from_u128(9),
            name: "payments".into(),
            owner_team_id: String::new(),
            status: "active".into(),
        })
        .then_err(TenancyError::ProjectNameTaken("payments".into()));
    given::<TenancyAggregate>(vec![])
        .when(Command::CreateProject {
            id: PAYMENTS,
            name: "x".into(),
            owner_team_id: String::new(),
            status: "deleted".into(),
        })
        .then_err(TenancyError::Invalid {
            field: "status",
            message: "status must be active or archived",
        });
}

#[test]
fn environment_names_are_unique_in_their_project_and_an_archived_one_takes_none() {
    let made = Event::EnvironmentCreated {
        id: PROD,
        project_id: PAYMENTS,
        name: "prod".into(),
        kind: "prod".into(),
    };
    given::<TenancyAggregate>(vec![project("Payments")])
        .when(create_env(PROD, "prod"))
        .then(vec![made.clone()]);
    given::<TenancyAggregate>(vec![project("Payments"), made.clone()])
        .when(create_env(Uuid::from_u128(3), "PROD"))
        .then_err(TenancyError::EnvironmentNameTaken);
    given::<TenancyAggregate>(vec![
        project("Payments"),
        Event::StatusChanged {
            id: PAYMENTS,
            status: "archived".into(),
        },
    ])
    .when(create_env(PROD, "prod"))
    .then_err(TenancyError::Archived);
    given::<TenancyAggregate>(vec![])
        .when(create_env(PROD, "prod"))
        .then_err(TenancyError::ProjectNotFound);
    given::<TenancyAggregate>(vec![project("Payments"), made])
        .when(Command::DeleteEnvironment { id: PROD })
        .then(vec![Event::EnvironmentDeleted { id: PROD }]);
}

#[test]
fn setting_the_status_it_has_changes_nothing() {
    given::<TenancyAggregate>(vec![project("Payments")])
        .when(Command::SetStatus {
            id: PAYMENTS,
            status: "active".into(),
        })
        .then(vec![]);
    given::<TenancyAggregate>(vec![])
        .when(Command::SetStatus {
            id: PAYMENTS,
            status: "archived".into(),
        })
        .then_err(TenancyError::ProjectNotFound);
}

#[test]
fn tenancy_decodes_as_it_was_encoded() {
    for event in [
        project("Payments"),
        Event::StatusChanged {
            id: PAYMENTS,
            status: "archived".into(),
        },
        Event::EnvironmentCreated {
            id: PROD,
            project_id: PAYMENTS,
            name: "prod".into(),
            kind: "prod".into(),
        },
        Event::EnvironmentDeleted { id: PROD },
    ] {
        let new = TenancyAggregate::encode(&event);
        let env = Envelope {
            event_type: new.event_type.into(),
            payload: new.payload,
            ..Default::default()
        };
        assert_eq!(TenancyAggregate::decode(&env).expect("decodes"), event);
    }
}
