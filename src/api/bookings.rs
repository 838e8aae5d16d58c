//! The office's view of tours over REST: `GET /bookings` (optionally a caller's, from a time on),
//! `GET /bookings/{code}`, and `DELETE /bookings/{code}` (cancels: the slot opens again and the caller's memory
//! records it). Behind the API key like the memory API.

use axum::extract::{Path, State};
use axum::Json;
use chrono::NaiveDateTime;
use schemars::JsonSchema;
use serde::Deserialize;

use super::error::ApiError;
use super::memories::{Params, Results};
use crate::agent::{parse_office_time, Booking, Cancelled};
use crate::app::AppState;

/// Who a cancellation through the API is recorded as.
const BY: &str = "the office";

/// `GET /bookings` query.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct BookingFilter {
    /// Only this caller's tours.
    pub user_id: Option<String>,
    /// Only tours starting then or later: `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (office wall clock).
    pub from: Option<String>,
}

fn parse_from(s: &str) -> Result<NaiveDateTime, ApiError> {
    parse_office_time(s)
        .ok_or_else(|| ApiError::bad_request(format!("from {s:?} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM")))
}

/// Tours, soonest first.
pub async fn list(
    State(state): State<AppState>,
    Params(filter): Params<BookingFilter>,
) -> Result<Json<Results<Booking>>, ApiError> {
    let from = filter.from.as_deref().map(parse_from).transpose()?;
    let results = state.agent.office().list(filter.user_id.as_deref(), from).await?;
    Ok(Json(Results { results }))
}

/// One tour by confirmation code.
pub async fn show(State(state): State<AppState>, Path(code): Path<String>) -> Result<Json<Booking>, ApiError> {
    state.agent.office().show(&code).await?.map(Json).ok_or_else(|| ApiError::no_booking(&code))
}

/// Cancels a tour.
pub async fn cancel(State(state): State<AppState>, Path(code): Path<String>) -> Result<Json<Cancelled>, ApiError> {
    state.agent.office().cancel(&code, BY).await?.map(Json).ok_or_else(|| ApiError::no_booking(&code))
}
