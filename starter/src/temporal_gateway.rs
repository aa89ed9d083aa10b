//! Starting `PaymentWorkflow` from the webhook, tolerant of Temporal being away.
//!
//! The connection is made lazily and re-tried on the next call, and every start is bounded by
//! a short deadline, so the webhook answers NOWPayments quickly whatever state Temporal is in.
//! A start that did not happen is left to the re-driver: the IPN is already stored.

use activities::config::TemporalSecurity;
use payout_worker::connect_temporal_secured;
use std::time::Duration;
use temporalio_client::{errors::WorkflowStartError, Client, WorkflowIdReusePolicy, WorkflowStartOptions};
use temporalio_common::search_attributes::SearchAttributes;
use tokio::sync::Mutex;
use tracing::warn;
use workflows::{domain::PlatformFee, payment_workflow_id, search_attributes, PaymentWorkflow, PaymentWorkflowInput};

/// How long a webhook request may wait for Temporal before leaving the start to the re-driver.
const START_DEADLINE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Temporal is unreachable: {0}")]
    Unreachable(String),
    #[error("Temporal did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("Temporal refused to start the workflow: {0}")]
    Refused(String),
}

/// Whether this call started the workflow or found it already there; both mean "done".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Now,
    AlreadyExisted,
}

pub struct TemporalGateway {
    address: String,
    namespace: String,
    task_queue: String,
    platform_fee: PlatformFee,
    security: TemporalSecurity,
    client: Mutex<Option<Client>>,
}

impl TemporalGateway {
    pub fn new(address: &str, namespace: &str, task_queue: &str, platform_fee: PlatformFee) -> Self {
        Self {
            address: address.to_owned(),
            namespace: namespace.to_owned(),
            task_queue: task_queue.to_owned(),
            platform_fee,
            security: TemporalSecurity::default(),
            client: Mutex::new(None),
        }
    }

    /// TLS, a client certificate or an API key, as configured (`TEMPORAL_TLS_*`, `TEMPORAL_API_KEY`).
    pub fn with_security(mut self, security: TemporalSecurity) -> Self {
        self.security = security;
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn task_queue(&self) -> &str {
        &self.task_queue
    }

    pub async fn client(&self) -> Result<Client, StartError> {
        let mut cached = self.client.lock().await;
        if let Some(client) = cached.as_ref() {
            return Ok(client.clone());
        }
        let client = connect_temporal_secured(&self.address, &self.namespace, &self.security, Duration::from_secs(1))
            .await
            .map_err(|e| StartError::Unreachable(e.to_string()))?;
        *cached = Some(client.clone());
        Ok(client)
    }

    /// Whether Temporal answers for the namespace now (within `deadline`): `GET /ready`.
    pub async fn ping(&self, deadline: Duration) -> Result<(), StartError> {
        use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;
        let client = tokio::time::timeout(deadline, self.client()).await.map_err(|_| StartError::TimedOut(deadline))??;
        let request = DescribeNamespaceRequest { namespace: self.namespace.clone(), ..Default::default() };
        let mut service = client.connection().workflow_service();
        match tokio::time::timeout(deadline, service.describe_namespace(temporalio_client::tonic::Request::new(request))).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(StartError::Unreachable(status.message().to_owned())),
            Err(_) => Err(StartError::TimedOut(deadline)),
        }
    }

    /// Starts `payment-{payment_id}` at most once, ever: a closed workflow's id is never reused,
    /// so a late duplicate IPN cannot pay a payment twice.
    pub async fn start_payment_workflow(&self, payment_id: i64, client_id: &str) -> Result<Started, StartError> {
        self.start_payment_run(payment_id, client_id, WorkflowIdReusePolicy::RejectDuplicate).await
    }

    /// A new run of `payment-{payment_id}` only if every earlier run failed (a payment NOWPayments
    /// did not confirm): a run that completed, and so routed the payment, is never run again.
    pub async fn restart_failed_payment_workflow(&self, payment_id: i64, client_id: &str) -> Result<Started, StartError> {
        self.start_payment_run(payment_id, client_id, WorkflowIdReusePolicy::AllowDuplicateFailedOnly).await
    }

    async fn start_payment_run(&self, payment_id: i64, client_id: &str, reuse: WorkflowIdReusePolicy) -> Result<Started, StartError> {
        let client = self.client().await?;
        let options = WorkflowStartOptions::new(self.task_queue.clone(), payment_workflow_id(payment_id))
            .id_reuse_policy(reuse)
            .search_attributes(SearchAttributes::new([
                search_attributes::CLIENT_ID.value_set(client_id.to_owned()),
                search_attributes::PAYMENT_ID.value_set(payment_id.to_string()),
            ]))
            .static_summary(format!("payment {payment_id} for client {client_id}"))
            .build();
        let input = PaymentWorkflowInput { payment_id, platform_fee: self.platform_fee };
        let start = client.start_workflow(PaymentWorkflow::run, input, options);
        match tokio::time::timeout(START_DEADLINE, start).await {
            Err(_) => Err(StartError::TimedOut(START_DEADLINE)),
            Ok(Ok(_)) => Ok(Started::Now),
            Ok(Err(WorkflowStartError::AlreadyStarted { .. })) => Ok(Started::AlreadyExisted),
            Ok(Err(e)) => {
                warn!(payment_id, error = %e, "workflow start failed");
                Err(StartError::Refused(e.to_string()))
            }
        }
    }
}
