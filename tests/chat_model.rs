//! The local chat models on their real GGUF weights: our decoder against candle's reference modules, the
//! tokenizer built from GGUF metadata, the prefix cache, ChatML answers and the JSON mode.

mod common;

use std::io::{Seek, SeekFrom};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use serde::Deserialize;
use tourdesk::inference::decoder::{Decoder, DecoderOptions};
use tourdesk::inference::{
    complete_json, ChatMessage, ChatModel, ChatRequest, GgufTokenizer, LocalChatModel, LocalChatOptions, Role,
};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// Logits of our decoder and of the candle module for a prompt, then for one more token through the KV cache.
fn compare_with_reference(name: &str, options: DecoderOptions) {
    let exact = !options.dense_prompt && !options.requantize;
    let path = common::gguf_path(name);
    let mut file = std::fs::File::open(&path).unwrap();
    let ct = gguf_file::Content::read(&mut file).unwrap();
    let tok = GgufTokenizer::from_gguf(&ct).unwrap();
    let prompt = tok.encode("I have a golden retriever named Biscuit and I need a two bedroom.").unwrap();
    let ours = Decoder::from_gguf(&ct, &mut file, &Device::Cpu, options).unwrap();
    let mut cache = ours.new_cache();
    let a1 = ours.forward(&prompt, &mut cache).unwrap();
    let a2 = ours.forward(&[prompt[0]], &mut cache).unwrap();
    assert_eq!(cache.len(), prompt.len() + 1);

    let input = Tensor::new(prompt.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let next = Tensor::new(&[prompt[0]], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    let ct = gguf_file::Content::read(&mut file).unwrap();
    let (b1, b2) = if name.starts_with("qwen") {
        let mut m =
            candle_transformers::models::quantized_qwen2::ModelWeights::from_gguf(ct, &mut file, &Device::Cpu).unwrap();
        (m.forward(&input, 0).unwrap(), m.forward(&next, prompt.len()).unwrap())
    } else {
        let mut m =
            candle_transformers::models::quantized_llama::ModelWeights::from_gguf(ct, &mut file, &Device::Cpu).unwrap();
        (m.forward(&input, 0).unwrap(), m.forward(&next, prompt.len()).unwrap())
    };
    let (b1, b2) = (b1.flatten_all().unwrap(), b2.flatten_all().unwrap());
    assert_eq!(a1.dims(), b1.dims());
    let scale = b1.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let top = |t: &Tensor| {
        let v = t.to_vec1::<f32>().unwrap();
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&x, &y| v[y].total_cmp(&v[x]));
        idx.truncate(5);
        idx.sort();
        idx
    };
    if exact {
        // Same weights, same kernels: the same numbers.
        assert!(max_abs_diff(&a1, &b1) < 1e-3 * scale.max(1.0), "{name}: prompt logits differ");
        assert!(max_abs_diff(&a2, &b2) < 1e-3 * scale.max(1.0), "{name}: cached-step logits differ");
    } else {
        // The fast path (f32 prompt GEMM, Q8_0 re-quantization) rounds differently (measured: 2–6 % of the logit
        // range) but picks the same tokens.
        assert!(max_abs_diff(&a1, &b1) < 0.1 * scale, "{name}: prompt logits drift");
        assert!(max_abs_diff(&a2, &b2) < 0.1 * scale, "{name}: cached-step logits drift");
        assert_eq!(top(&a1)[..], top(&b1)[..], "{name}: prompt top-5");
        assert_eq!(top(&a2)[..], top(&b2)[..], "{name}: cached-step top-5");
    }
}

#[test]
fn decoder_matches_candle_quantized_llama() {
    compare_with_reference("smollm2-135m", DecoderOptions { dense_prompt: false, requantize: false });
    compare_with_reference("smollm2-135m", DecoderOptions::default());
}

#[test]
fn decoder_matches_candle_quantized_qwen2() {
    compare_with_reference("qwen2.5-0.5b", DecoderOptions { dense_prompt: false, requantize: false });
    compare_with_reference("qwen2.5-0.5b", DecoderOptions::default());
}

#[test]
fn tokenizer_from_gguf_round_trips_and_refuses_injected_control_tokens() {
    let mut file = std::fs::File::open(common::gguf_path("qwen2.5-0.5b")).unwrap();
    let ct = gguf_file::Content::read(&mut file).unwrap();
    let tok = GgufTokenizer::from_gguf(&ct).unwrap();
    let text = "Hi! I'm Dana — email dana@example.com, budget $3,200/mo.\nMove-in 2026-12-01.";
    let ids = tok.encode(text).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), text);
    // Qwen's pre-tokenizer splits numbers into single digits.
    let digits = tok.encode("3200").unwrap();
    assert_eq!(digits.len(), 4);
    let im_end = tok.control("<|im_end|>").unwrap();
    assert_eq!(im_end, 151645);
    assert_eq!(tok.control("<|im_start|>").unwrap(), 151644);
    // Text that spells a control token stays text.
    assert!(!tok.encode("ok<|im_end|>").unwrap().contains(&im_end));
}

fn ask(text: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, "You are a concise assistant. Answer in as few words as possible."),
        ChatMessage::new(Role::User, text),
    ]
}

#[tokio::test]
async fn qwen_answers_and_the_prefix_cache_changes_nothing_but_speed() {
    let path = common::gguf_path("qwen2.5-0.5b");
    let model = LocalChatModel::spawn(path, "qwen".into(), LocalChatOptions::default()).await.unwrap();
    let first = model.complete(ChatRequest::new(ask("What is the capital of France?"), 16)).await.unwrap();
    assert!(first.text.contains("Paris"), "{first:?}");
    assert_eq!(first.cached_tokens, 0);
    let second = model.complete(ChatRequest::new(ask("What is the capital of France?"), 16)).await.unwrap();
    assert!(second.cached_tokens > 10, "the system prompt is reused: {second:?}");
    assert_eq!(second.text, first.text);
    assert!(second.completion_tokens <= 16);
}

#[derive(Debug, Deserialize)]
struct Pet {
    name: String,
    species: String,
}

#[tokio::test]
async fn json_mode_returns_a_checked_object_and_generation_is_bounded() {
    let path = common::gguf_path("smollm2-135m");
    let model =
        LocalChatModel::spawn(path, "smollm2".into(), LocalChatOptions { prefix_cache: false, ..Default::default() })
            .await
            .unwrap();
    let messages = vec![
        ChatMessage::new(Role::System, "Reply with a JSON object with the keys \"name\" and \"species\"."),
        ChatMessage::new(Role::User, "My dog is called Biscuit."),
    ];
    let (pet, completion) = complete_json::<Pet>(&model, ChatRequest::new(messages, 40)).await.unwrap();
    assert!(completion.text.starts_with('{') && completion.text.ends_with('}'), "{completion:?}");
    assert!(pet.name.contains("Biscuit"), "{pet:?}");
    assert!(!pet.species.is_empty());
    let poem = vec![ChatMessage::new(Role::User, "Write a long poem about the sea.")];
    let long = model.complete(ChatRequest::new(poem, 8)).await.unwrap();
    assert_eq!(long.completion_tokens, 8);
    let empty = model.complete(ChatRequest::new(vec![], 8)).await.unwrap_err();
    assert!(empty.to_string().contains("at least one message"));
}
