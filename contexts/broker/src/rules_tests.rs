//! Approval rules, given / when / then; and which workflow a request is bound to.

use super::*;
use aegis_kernel::spec::given;

const STRICT: Uuid = Uuid::from_u128(1);
const LOOSE: Uuid = Uuid::from_u128(2);
const DEFAULT: Uuid = Uuid::from_u128(3);
const PROD: Uuid = Uuid::from_u128(10);
const DB: Uuid = Uuid::from_u128(11);

fn workflow(name: &str, min_approvers: u32) -> Workflow {
    Workflow {
        name: name.into(),
        description: String::new(),
        min_approvers,
        approver_role_id: String::new(),
        wrap_ttl_created_seconds: 7 * 86_400,
        wrap_ttl_approved_seconds: 3600,
        wrap_ttl_claimed_seconds: 300,
        request_ttl_seconds: 86_400,
        require_justification: true,
        allow_self_approval: false,
        notification_channels: Vec::new(),
        is_default: false,
        enabled: true,
        break_glass_user_ids: Vec::new(),
    }
}

fn policy(name: &str, workflow_id: Uuid, priority: i32, selector: Selector) -> Policy {
    Policy {
        name: name.into(),
        selector,
        workflow_id,
        priority,
        enabled: true,
    }
}

fn prod() -> Selector {
    Selector {
        environment: Some("prod".into()),
        ..Selector::default()
    }
}

fn created(id: Uuid, w: Workflow) -> Event {
    Event::WorkflowCreated { id, workflow: w }
}

fn rules(events: &[Event]) -> Rules {
    events.iter().fold(Rules::default(), |r, e| {
        RulesAggregate::evolve(r, e, &Envelope::default())
    })
}

fn target(environment: &str, secret_ref: &str) -> Target {
    Target {
        project_id: "payments".into(),
        environment: environment.into(),
        provider_type: "kubernetes".into(),
        secret_ref: secret_ref.into(),
    }
}

#[test]
fn names_are_unique_whatever_their_case_and_values_are_checked() {
    given::<RulesAggregate>(vec![created(STRICT, workflow("Strict", 2))])
        .when(Command::CreateWorkflow {
            id: LOOSE,
            workflow: workflow("strict", 1),
        })
        .then_err(RulesError::NameTaken {
            kind: "workflow",
            name: "strict".into(),
        });
    // Renaming to its own name is no clash.
    given::<RulesAggregate>(vec![created(STRICT, workflow("Strict", 2))])
        .when(Command::UpdateWorkflow {
            id: STRICT,
            workflow: workflow("Strict", 3),
        })
        .then(vec![Event::WorkflowUpdated {
            id: STRICT,
            workflow: workflow("Strict", 3),
        }]);
    let mut bad = workflow("x", 1);
    bad.request_ttl_seconds = 0;
    given::<RulesAggregate>(vec![])
        .when(Command::CreateWorkflow {
            id: STRICT,
            workflow: bad,
        })
        .then_err(RulesError::Invalid {
            field: "request_ttl_seconds",
            message: "a positive number of seconds, at most a year".into(),
        });
    given::<RulesAggregate>(vec![])
        .when(Command::UpdateWorkflow {
            id: STRICT,
            workflow: workflow("x", 1),
        })
        .then_err(RulesError::WorkflowNotFound);
}

#[test]
fn a_policy_names_a_workflow_that_exists_and_a_workflow_in_use_stays() {
    given::<RulesAggregate>(vec![])
        .when(Command::CreatePolicy {
            id: PROD,
            policy: policy("prod", STRICT, 10, prod()),
        })
        .then_err(RulesError::UnknownWorkflow(STRICT));
    let history = vec![
        created(STRICT, workflow("Strict", 2)),
        Event::PolicyCreated {
            id: PROD,
            policy: policy("prod", STRICT, 10, prod()),
        },
    ];
    given::<RulesAggregate>(history.clone())
        .when(Command::DeleteWorkflow { id: STRICT })
        .then_err(RulesError::InUse(format!("policy `prod` ({PROD})")));
    let mut default = workflow("Default", 1);
    default.is_default = true;
    given::<RulesAggregate>(vec![created(DEFAULT, default)])
        .when(Command::DeleteWorkflow { id: DEFAULT })
        .then_err(RulesError::InUse(
            "the default: make another workflow the default".into(),
        ));
    let mut after = history;
    after.push(Event::PolicyDeleted { id: PROD });
    given::<RulesAggregate>(after)
        .when(Command::DeleteWorkflow { id: STRICT })
        .then(vec![Event::WorkflowDeleted { id: STRICT }]);
}

#[test]
fn naming_a_default_takes_it_from_the_old_one() {
    let mut a = workflow("A", 1);
    a.is_default = true;
    let mut b = workflow("B", 2);
    b.is_default = true;
    let r = rules(&[created(STRICT, a), created(LOOSE, b)]);
    assert!(!r.workflows[&STRICT].value.is_default);
    assert!(r.workflows[&LOOSE].value.is_default);
}

#[test]
fn the_highest_priority_enabled_match_picks_the_workflow_else_the_default() {
    let mut default = workflow("Default", 1);
    default.is_default = true;
    let db_prefix = Selector {
        secret_ref_prefix: Some("prod/db".into()),
        ..prod()
    };
    let mut r = rules(&[
        created(STRICT, workflow("Strict", 3)),
        created(LOOSE, workflow("Loose", 0)),
        created(DEFAULT, default),
        Event::PolicyCreated {
            id: PROD,
            policy: policy("prod", LOOSE, 10, prod()),
        },
        Event::PolicyCreated {
            id: DB,
            policy: policy("prod databases", STRICT, 20, db_prefix),
        },
    ]);
    let id = |t: &Target, r: &Rules| r.workflow_for(t).map(|(id, _)| id);
    assert_eq!(id(&target("prod", "prod/db/main"), &r), Some(STRICT));
    assert_eq!(id(&target("prod", "prod/cache"), &r), Some(LOOSE));
    assert_eq!(id(&target("staging", "prod/db/main"), &r), Some(DEFAULT));
    // A disabled policy, or one whose workflow is disabled, is passed over.
    if let Some(p) = r.policies.get_mut(&DB) {
        p.value.enabled = false;
    }
    assert_eq!(id(&target("prod", "prod/db/main"), &r), Some(LOOSE));
    if let Some(w) = r.workflows.get_mut(&LOOSE) {
        w.value.enabled = false;
    }
    assert_eq!(id(&target("prod", "prod/db/main"), &r), Some(DEFAULT));
    let none = rules(&[created(STRICT, workflow("Strict", 3))]);
    assert_eq!(none.workflow_for(&target("prod", "x")), None);
}

#[test]
fn a_binding_is_the_workflows_rules_at_that_moment() {
    let w = workflow("Strict", 2);
    let b = w.binding(STRICT);
    assert_eq!(b.workflow_id, STRICT.to_string());
    assert_eq!(b.min_approvers, 2);
    assert_eq!(b.ttl_ms, 86_400_000);
    assert!(b.require_justification && !b.allow_self_approval);
}

#[test]
fn rules_decode_as_they_were_encoded() {
    let events = [
        created(STRICT, workflow("Strict", 2)),
        Event::WorkflowUpdated {
            id: STRICT,
            workflow: workflow("Stricter", 3),
        },
        Event::WorkflowDeleted { id: STRICT },
        Event::PolicyCreated {
            id: PROD,
            policy: policy("prod", STRICT, 10, prod()),
        },
        Event::PolicyUpdated {
            id: PROD,
            policy: policy("prod", LOOSE, -1, Selector::default()),
        },
        Event::PolicyDeleted { id: PROD },
    ];
    for event in events {
        let new = RulesAggregate::encode(&event);
        let env = Envelope {
            event_type: new.event_type.into(),
            payload: new.payload,
            ..Default::default()
        };
        assert_eq!(RulesAggregate::decode(&env).expect("decodes"), event);
    }
}
