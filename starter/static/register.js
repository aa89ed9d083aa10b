// A nicety only: the form works the same without it.
const strategy = document.getElementById('payout_strategy');
const field = document.getElementById('threshold_field');
const show = () => { field.hidden = strategy.value !== 'threshold'; };
strategy.addEventListener('change', show);
show();
