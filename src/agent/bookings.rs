//! Tour bookings, persisted in a LanceDB table. A slot (property, tour type, start) is booked at most once: the
//! insert is a merge keyed on the slot that only inserts when no row has that key.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchIterator, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDateTime;
use futures::TryStreamExt;
use lancedb::expr::{col, lit};
use lancedb::query::{ExecutableQuery, QueryBase};
use lancedb::Table;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::state::TourType;
use super::AgentError;
use crate::memory::store::{connect, open_or_create};

const TABLE: &str = "bookings";
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M";

/// A booked tour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Booking {
    /// Confirmation code read to the caller.
    pub confirmation: String,
    /// Property id.
    pub property: String,
    /// Tour type.
    pub tour_type: TourType,
    /// Start, office wall clock.
    pub start: NaiveDateTime,
    /// Caller's user id.
    pub user_id: String,
    /// Caller's name.
    pub name: String,
    /// Caller's email.
    pub email: String,
    /// Caller's phone.
    pub phone: String,
}

/// What happened to a booking request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookOutcome {
    /// Stored.
    Booked(Booking),
    /// Someone else holds the slot.
    Taken,
}

/// The bookings table. Cheap to clone.
#[derive(Clone)]
pub struct BookingStore {
    table: Table,
    /// Serialises this process's bookings so two calls racing for one slot are decided in order.
    lock: Arc<tokio::sync::Mutex<()>>,
}

fn schema() -> SchemaRef {
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("slot"),
        text("confirmation"),
        text("property"),
        text("tour_type"),
        text("start"),
        text("user_id"),
        text("name"),
        text("email"),
        text("phone"),
    ]))
}

fn slot_key(property: &str, tour: TourType, start: NaiveDateTime) -> String {
    format!("{property}|{}|{}", tour.spoken(), start.format(TIME_FORMAT))
}

fn tour_from(s: &str) -> Result<TourType, AgentError> {
    match s {
        "in-person" => Ok(TourType::InPerson),
        "virtual" => Ok(TourType::Virtual),
        other => Err(AgentError::Bookings(format!("unknown tour type {other:?} in the bookings table"))),
    }
}

/// A confirmation code as callers and staff type it (any case, surrounding blanks) normalised, or a clear error:
/// 4 to 16 letters and digits.
pub fn confirmation_code(code: &str) -> Result<String, AgentError> {
    let code = code.trim().to_ascii_uppercase();
    if (4..=16).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(code)
    } else {
        Err(AgentError::InvalidCode(code.chars().take(32).collect()))
    }
}

impl BookingStore {
    /// Opens (or creates) the bookings table in the LanceDB at `uri`.
    pub async fn open(uri: &str) -> Result<Self, AgentError> {
        let db = connect(uri).await?;
        let table = open_or_create(&db, TABLE, schema()).await?;
        Ok(Self { table, lock: Arc::new(tokio::sync::Mutex::new(())) })
    }

    async fn rows(&self, filter: lancedb::expr::DfExpr) -> Result<Vec<Booking>, AgentError> {
        let batches: Vec<RecordBatch> = self.table.query().only_if_expr(filter).execute().await?.try_collect().await?;
        let mut out = Vec::new();
        for b in &batches {
            let c = |n: &str| {
                b.column_by_name(n)
                    .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                    .ok_or_else(|| AgentError::Bookings(format!("bookings column {n} is missing")))
            };
            let (conf, prop, tour, start, user, name, email, phone) = (
                c("confirmation")?,
                c("property")?,
                c("tour_type")?,
                c("start")?,
                c("user_id")?,
                c("name")?,
                c("email")?,
                c("phone")?,
            );
            for i in 0..b.num_rows() {
                out.push(Booking {
                    confirmation: conf.value(i).into(),
                    property: prop.value(i).into(),
                    tour_type: tour_from(tour.value(i))?,
                    start: NaiveDateTime::parse_from_str(start.value(i), TIME_FORMAT)
                        .map_err(|e| AgentError::Bookings(format!("bad start time in the bookings table: {e}")))?,
                    user_id: user.value(i).into(),
                    name: name.value(i).into(),
                    email: email.value(i).into(),
                    phone: phone.value(i).into(),
                });
            }
        }
        Ok(out)
    }

    /// Start times already booked for this property and tour type.
    #[instrument(skip_all, name = "bookings.taken")]
    pub async fn taken(&self, property: &str, tour: TourType) -> Result<HashSet<NaiveDateTime>, AgentError> {
        let filter = col("property").eq(lit(property.to_string())).and(col("tour_type").eq(lit(tour.spoken())));
        Ok(self.rows(filter).await?.into_iter().map(|b| b.start).collect())
    }

    /// A caller's bookings.
    #[instrument(skip_all, name = "bookings.for_user")]
    pub async fn for_user(&self, user_id: &str) -> Result<Vec<Booking>, AgentError> {
        self.rows(col("user_id").eq(lit(user_id.to_string()))).await
    }

    /// Every booking, soonest first; with `from`, only those starting then or later.
    #[instrument(skip_all, name = "bookings.list")]
    pub async fn list(&self, from: Option<NaiveDateTime>) -> Result<Vec<Booking>, AgentError> {
        let mut all = self.rows(lit(true)).await?;
        all.retain(|b| from.is_none_or(|t| b.start >= t));
        all.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.confirmation.cmp(&b.confirmation)));
        Ok(all)
    }

    /// The booking with this confirmation code (any case), if any.
    #[instrument(skip_all, name = "bookings.by_code")]
    pub async fn by_code(&self, code: &str) -> Result<Option<Booking>, AgentError> {
        let code = confirmation_code(code)?;
        Ok(self.rows(col("confirmation").eq(lit(code))).await?.pop())
    }

    /// Cancels the booking with this code: its row goes, so its slot is open again. Returns it, or `None` when no
    /// booking has the code.
    #[instrument(skip_all, name = "bookings.cancel")]
    pub async fn cancel(&self, code: &str) -> Result<Option<Booking>, AgentError> {
        let _guard = self.lock.lock().await;
        let Some(booking) = self.by_code(code).await? else { return Ok(None) };
        self.table.delete(&col("confirmation").eq(lit(booking.confirmation.clone()))).await?;
        Ok(Some(booking))
    }

    /// Books the slot unless it is taken.
    #[instrument(skip_all, name = "bookings.book")]
    pub async fn book(&self, booking: Booking) -> Result<BookOutcome, AgentError> {
        let _guard = self.lock.lock().await;
        let one = |s: &str| Arc::new(StringArray::from(vec![s.to_string()])) as arrow_array::ArrayRef;
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                one(&slot_key(&booking.property, booking.tour_type, booking.start)),
                one(&booking.confirmation),
                one(&booking.property),
                one(booking.tour_type.spoken()),
                one(&booking.start.format(TIME_FORMAT).to_string()),
                one(&booking.user_id),
                one(&booking.name),
                one(&booking.email),
                one(&booking.phone),
            ],
        )
        .map_err(|e| AgentError::Bookings(e.to_string()))?;
        let reader = RecordBatchIterator::new(vec![Ok(batch)], schema());
        let mut merge = self.table.merge_insert(&["slot"]);
        merge.when_not_matched_insert_all();
        let result = merge.execute(Box::new(reader)).await?;
        Ok(if result.num_inserted_rows == 1 { BookOutcome::Booked(booking) } else { BookOutcome::Taken })
    }
}
